//! When a difference counts: Welch's t-test (one-sided, 5 %) over seeds, and never between
//! two numbers that a constant predictor beats.

/// The verdict of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The data shows it (beyond the spread over seeds where there is one).
    Held,
    /// The data shows the opposite, or the structure is not there.
    NotHeld,
    /// The difference points the claimed way but is within the spread over seeds, too few
    /// seeds ran to tell, or both sides are below the majority-class rate.
    NotShown,
    /// The comparison cannot fail with this run's networks (e.g. no hand-designed network of
    /// a size near the found one's).
    NotInformative,
    /// This run has no data for it.
    Unchecked,
}

impl From<bool> for Verdict {
    fn from(held: bool) -> Self {
        if held {
            Verdict::Held
        } else {
            Verdict::NotHeld
        }
    }
}

/// Mean and sample standard deviation (0 for fewer than 2 values).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// One-sided 95 % quantiles of Student's t for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771,
    1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706,
    1.703, 1.701, 1.699, 1.697,
];

/// The one-sided 95 % quantile of t for `df` degrees of freedom, rounded down to the next
/// tabulated value (conservative).
fn t95(df: f64) -> f64 {
    match df.floor() as usize {
        0 => f64::INFINITY,
        d @ 1..=30 => T95[d - 1],
        31..=59 => 1.684,
        60..=119 => 1.671,
        _ => 1.658,
    }
}

/// Welch's statistic and degrees of freedom for mean(a) - mean(b); `None` with fewer than 2
/// values on a side.
pub fn welch(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, sa), (mb, sb)) = (mean_std(a), mean_std(b));
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        let t = if ma == mb {
            0.0
        } else {
            (ma - mb).signum() * f64::INFINITY
        };
        return Some((t, f64::INFINITY));
    }
    let df =
        (va + vb).powi(2) / (va * va / (a.len() as f64 - 1.0) + vb * vb / (b.len() as f64 - 1.0));
    Some(((ma - mb) / se, df))
}

/// Whether paired differences `d` (one per seed, e.g. runner-up minus closest) are above 0:
/// held when the one-sided paired t-test says so at 5 % (`t = mean / (sd / sqrt n)`, n - 1
/// degrees of freedom), not held when their mean is not above 0, not shown otherwise (and
/// with fewer than 2 seeds).
pub fn paired_positive(d: &[f64]) -> (Verdict, String) {
    let (m, sd) = mean_std(d);
    if d.is_empty() || m <= 0.0 {
        return (Verdict::NotHeld, String::new());
    }
    if d.len() < 2 {
        return (
            Verdict::NotShown,
            "1 seed: at least 2 are needed to tell the difference from seed noise".into(),
        );
    }
    let df = d.len() as f64 - 1.0;
    let t = if sd == 0.0 {
        f64::INFINITY
    } else {
        m / (sd / (d.len() as f64).sqrt())
    };
    if t > t95(df) {
        (
            Verdict::Held,
            format!(
                "paired t = {t:.2} > {:.2} (df {df}, one-sided 5 %)",
                t95(df)
            ),
        )
    } else {
        (
            Verdict::NotShown,
            format!(
                "within the spread over seeds: paired t = {t:.2} <= {:.2} (df {df}, one-sided 5 %)",
                t95(df)
            ),
        )
    }
}

/// Whether `a` is greater than `b` (accuracies over seeds): held when Welch's test says so at
/// 5 %, not held when the mean of `a` is not above `b`'s, not shown otherwise. Where both
/// means are at or below `majority` (the accuracy of always predicting the most frequent
/// class), neither network learned the task and the comparison is not shown.
pub fn greater(a: &[f64], b: &[f64], majority: Option<f64>) -> (Verdict, String) {
    let ((ma, _), (mb, _)) = (mean_std(a), mean_std(b));
    if let Some(m) = majority
        && ma <= m
        && mb <= m
    {
        return (
            Verdict::NotShown,
            format!("both at or below the majority-class rate {m:.3}"),
        );
    }
    if ma <= mb {
        return (Verdict::NotHeld, String::new());
    }
    match welch(a, b) {
        None => (
            Verdict::NotShown,
            format!(
                "{} vs {} seed(s): at least 2 per side are needed to tell the difference from seed noise",
                a.len(),
                b.len()
            ),
        ),
        Some((t, df)) if t > t95(df) => (
            Verdict::Held,
            format!(
                "Welch t = {t:.2} > {:.2} (df {df:.1}, one-sided 5 %)",
                t95(df)
            ),
        ),
        Some((t, df)) => (
            Verdict::NotShown,
            format!(
                "within the spread over seeds: Welch t = {t:.2} <= {:.2} (df {df:.1}, one-sided 5 %)",
                t95(df)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_a_hand_computation() {
        // means 0.9 and 0.8, sample variances 0.01 and 0.0025, 3 values each.
        let (t, df) = welch(&[0.8, 0.9, 1.0], &[0.75, 0.8, 0.85]).unwrap();
        let se = (0.01f64 / 3.0 + 0.0025 / 3.0).sqrt();
        assert!((t - 0.1 / se).abs() < 1e-9, "{t}");
        let expected_df = (0.0125f64 / 3.0).powi(2)
            / ((0.01f64 / 3.0).powi(2) / 2.0 + (0.0025f64 / 3.0).powi(2) / 2.0);
        assert!((df - expected_df).abs() < 1e-9, "{df}");
    }

    #[test]
    fn the_claim_rule_on_synthetic_numbers() {
        // Clearly apart over 3 seeds: held.
        let (v, _) = greater(&[0.96, 0.97, 0.965], &[0.90, 0.91, 0.905], Some(0.6));
        assert_eq!(v, Verdict::Held);
        // Apart in the mean but within the spread: not shown.
        let (v, why) = greater(&[0.95, 0.80, 0.90], &[0.85, 0.90, 0.86], Some(0.6));
        assert_eq!(v, Verdict::NotShown, "{why}");
        // One seed per side: not shown, whatever the gap.
        let (v, why) = greater(&[0.99], &[0.5], None);
        assert_eq!((v, why.contains("at least 2")), (Verdict::NotShown, true));
        // Both below the majority-class rate (0.358 vs 0.319 with majority 0.600): not shown.
        let (v, why) = greater(&[0.358, 0.36, 0.357], &[0.319, 0.32, 0.316], Some(0.6));
        assert_eq!((v, why.contains("majority")), (Verdict::NotShown, true));
        // The other way round: not held.
        let (v, _) = greater(&[0.90, 0.91], &[0.95, 0.96], Some(0.6));
        assert_eq!(v, Verdict::NotHeld);
        // No spread at all and a real gap: held.
        let (v, _) = greater(&[0.9, 0.9], &[0.8, 0.8], None);
        assert_eq!(v, Verdict::Held);
    }

    #[test]
    fn the_paired_rule_on_synthetic_numbers() {
        // Differences 0.02, 0.03, 0.04: mean 0.03, sd 0.01, t = 0.03 / (0.01 / sqrt 3) = 5.196
        // > 2.920 (df 2): held.
        let (v, why) = paired_positive(&[0.02, 0.03, 0.04]);
        assert_eq!(v, Verdict::Held, "{why}");
        assert!(why.contains("5.20"), "{why}");
        // Positive on average but one seed the other way: within the spread.
        let (v, _) = paired_positive(&[0.05, -0.04, 0.01]);
        assert_eq!(v, Verdict::NotShown);
        // Negative on average, or one seed: not held / not shown.
        assert_eq!(paired_positive(&[-0.01, 0.005]).0, Verdict::NotHeld);
        assert_eq!(paired_positive(&[0.3]).0, Verdict::NotShown);
        // The same gap in every seed: held.
        assert_eq!(paired_positive(&[0.01, 0.01]).0, Verdict::Held);
    }
}
