//! The search driver ([`Searcher`]) and what a search algorithm gives it
//! ([`SearchStrategy`]): the algorithm says how to run its next step (a FUSE stage, a
//! random-search candidate) and which cell is best; the driver owns everything else, the
//! same for every algorithm: the checkpoint and the trace after each step, resume, the check
//! that a stored search was made with the requested settings, interruption, and the final
//! step (the best cell retrained from scratch and tested once).
//!
//! A new search algorithm is a type implementing [`SearchStrategy`] in this crate
//! (`random.rs` is the smallest example); `Searcher<YourStrategy>` then runs it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::data::dataset::Dataset;
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tanas_core::SettingsMismatch;
use tanas_data::{TaskData, TaskItem, TaskSplit};
use tanas_zoo::cell::Genotype;

use crate::algorithm::Algorithm;
use crate::config::SearchConfig;
use crate::data::{DataIdentity, SearchData, Splits};
use crate::error::{Result, SearchError};
use crate::fit::{bars_hidden, progress_bar};
use crate::result::{SearchResult, TestScore, cell_spec, retrain_and_test};
use crate::space::SearchSpace;
use crate::store::{
    CHECKPOINT_FILE, RESULT_FILE, TRACE_FILE, WEIGHTS_FILE, check_same, read_json, write_json,
    write_trace,
};

/// One completed step of a search: a line of the trace, an entry of the checkpoint.
pub trait SearchStep: Clone + Serialize + DeserializeOwned {
    /// Wall-clock seconds of the step.
    fn seconds(&self) -> f64;
    /// Candidate-epochs of the search so far, this step included.
    fn candidate_epochs(&self) -> usize;
}

/// A search algorithm as the [`Searcher`] runs it: a fixed number of steps, each computed
/// from the steps before it, and a rule for the best cell of completed steps.
pub trait SearchStrategy: Sized {
    /// The algorithm's settings: stored in the checkpoint and compared on resume.
    type Config: SearchConfig;
    /// The record of one step.
    type Step: SearchStep;
    /// Which algorithm it is (in the result).
    const ALGORITHM: Algorithm;
    /// Format tag of its checkpoint (a directory of another algorithm is not resumed).
    const FORMAT: &'static str;
    /// Its name (progress bar).
    const NAME: &'static str;
    /// What its steps are called, plural (progress bar).
    const STEPS: &'static str;

    /// The strategy for a config (validated) and a space.
    fn new(config: Self::Config, space: SearchSpace) -> Result<Self>;
    /// The config.
    fn config(&self) -> &Self::Config;
    /// The space searched.
    fn space(&self) -> &SearchSpace;
    /// Number of steps of a whole search.
    fn steps(&self) -> usize;
    /// Runs step `done.len() + 1` after the completed steps `done`; `start` is the search's
    /// first incumbent ([`Searcher::with_warm_start`]). Writes nothing.
    fn step<B: AutodiffBackend>(
        &self,
        done: &[Self::Step],
        start: Option<&Genotype>,
        splits: &Splits,
        hidden: bool,
        device: &B::Device,
    ) -> Result<Self::Step>;
    /// The best cell of completed steps and its val accuracy during the search.
    fn best(steps: &[Self::Step]) -> Option<(Genotype, f64)>;
}

/// The checkpoint (`checkpoint.json`): what identifies the search and its completed steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint<C, T> {
    format: String,
    config: C,
    space: SearchSpace,
    data: DataIdentity,
    /// The first incumbent ([`Searcher::with_warm_start`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warm_start: Option<Genotype>,
    steps: Vec<T>,
}

/// Runs a [`SearchStrategy`] in an output directory (see the module docs). Files:
/// `checkpoint.json` and `trace.jsonl` after every step, `weights.safetensors` and
/// `result.json` after the final step.
#[derive(Debug, Clone)]
pub struct Searcher<S> {
    strategy: S,
    warm_start: Option<Genotype>,
    interrupt: Option<Arc<AtomicBool>>,
}

impl<S: SearchStrategy> Searcher<S> {
    /// A search with a validated config.
    pub fn new(config: S::Config, space: SearchSpace) -> Result<Self> {
        Ok(Searcher {
            strategy: S::new(config, space)?,
            warm_start: None,
            interrupt: None,
        })
    }

    /// Starts the search from `incumbent` (Algorithm 2's `c*`: TA-NAS starts from the closest
    /// task's best cell): FUSE's first stage has it as candidate 0, a random search has it
    /// as candidate 1. It need not lie in the space; a checkpoint made with another start
    /// (or none) is not resumed ([`SearchError::ConfigMismatch`] on `warm_start`).
    pub fn with_warm_start(mut self, incumbent: Genotype) -> Self {
        self.warm_start = Some(incumbent);
        self
    }

    /// Stops the search after the step that is running when `flag` becomes true (checked
    /// after each step's checkpoint and before the final step): the call returns
    /// [`SearchError::Interrupted`] and a later call goes on from there. For Ctrl-C
    /// handlers, and for tests of resume.
    pub fn with_interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// The config.
    pub fn config(&self) -> &S::Config {
        self.strategy.config()
    }

    /// The space.
    pub fn space(&self) -> &SearchSpace {
        self.strategy.space()
    }

    /// Runs (or resumes) the search phase in `out`: the steps, a checkpoint and the trace
    /// after each. Reads only the train and val splits.
    ///
    /// If `out` holds a checkpoint, its format, config (all but `quiet`), space, data and
    /// warm start must be the requested ones ([`SearchError::ConfigMismatch`] names the
    /// first difference), and the search goes on after its last completed step; a search
    /// whose steps are all done returns at once.
    pub fn search<B: AutodiffBackend>(
        &self,
        data: SearchData<'_>,
        out: &Path,
        device: &B::Device,
    ) -> Result<Vec<S::Step>> {
        let s = &self.strategy;
        let common = s.config().common();
        let splits = Splits::new(&data, common.train_limit, common.val_limit)?;
        std::fs::create_dir_all(out).map_err(|e| SearchError::io(out, e))?;
        let ckpt_path = out.join(CHECKPOINT_FILE);
        let trace_path = out.join(TRACE_FILE);
        let requested = Checkpoint {
            format: S::FORMAT.to_string(),
            config: s.config().clone(),
            space: s.space().clone(),
            data: splits.identity(),
            warm_start: self.warm_start.clone(),
            steps: Vec::new(),
        };
        let mut ckpt = match read_checkpoint::<Checkpoint<S::Config, S::Step>>(
            &ckpt_path,
            S::FORMAT,
        )? {
            Some(stored) => {
                check_same(out, "config", &stored.config, &requested.config)?;
                check_same(out, "space", &stored.space, &requested.space)?;
                check_same(out, "data", &stored.data, &requested.data)?;
                check_same(out, "warm_start", &stored.warm_start, &requested.warm_start)?;
                if !stored.steps.is_empty() {
                    tracing::info!(dir = %out.display(), completed = stored.steps.len(), "resuming the search");
                }
                stored
            }
            None => requested,
        };
        // The checkpoint is the source of truth: the trace always matches it.
        write_trace(&trace_path, &ckpt.steps)?;
        let hidden = bars_hidden(common.quiet);
        let steps = s.steps();
        let bar = progress_bar(steps, S::STEPS, S::NAME.into(), hidden);
        bar.set_position(ckpt.steps.len() as u64);
        for index in ckpt.steps.len() + 1..=steps {
            let step = s.step::<B>(
                &ckpt.steps,
                self.warm_start.as_ref(),
                &splits,
                hidden,
                device,
            )?;
            tracing::info!(
                algorithm = ?S::ALGORITHM, index, steps, seconds = step.seconds(),
                candidate_epochs = step.candidate_epochs(), "search step finished"
            );
            ckpt.steps.push(step);
            write_json(&ckpt_path, &ckpt)?;
            write_trace(&trace_path, &ckpt.steps)?;
            bar.inc(1);
            if index < steps {
                self.check_interrupt(out, index)?;
            }
        }
        bar.finish_and_clear();
        Ok(ckpt.steps)
    }

    /// Runs (or resumes) the whole search in `out`: the steps ([`search`](Self::search)),
    /// then the best cell retrained from scratch and tested once
    /// ([`crate::retrain_and_test`]); writes `weights.safetensors` and `result.json`. A
    /// directory whose `result.json` is there returns it as stored.
    ///
    /// `test` is read only by the final evaluation, after everything else is done.
    pub fn run<B: AutodiffBackend, D: Dataset<TaskItem> + ?Sized>(
        &self,
        data: SearchData<'_>,
        test: &D,
        out: &Path,
        device: &B::Device,
    ) -> Result<SearchResult> {
        let steps = self.search::<B>(data, out, device)?;
        let result_path = out.join(RESULT_FILE);
        if let Some(done) = read_json::<SearchResult>(&result_path)? {
            tracing::info!(dir = %out.display(), "search already finished");
            return Ok(done);
        }
        self.check_interrupt(out, steps.len())?;
        let (genotype, val_accuracy) =
            S::best(&steps).ok_or_else(|| SearchError::config("steps", "must be at least 1"))?;
        let s = &self.strategy;
        let final_config = s.config().final_config();
        let fin = retrain_and_test::<B, D>(
            &cell_spec(&genotype, s.space().skeleton(), data.num_classes),
            data,
            test,
            &final_config,
            Some(&out.join(WEIGHTS_FILE)),
            device,
        )?;
        let result = SearchResult {
            algorithm: S::ALGORITHM,
            genotype,
            params: fin.params,
            val_accuracy,
            score: TestScore::from(&fin.test),
            test_loss: fin.test.loss,
            search_seconds: steps.iter().map(SearchStep::seconds).sum(),
            final_seconds: fin.seconds,
            candidate_epochs: steps.last().map_or(0, SearchStep::candidate_epochs),
            final_epochs: final_config.epochs,
            final_train_samples: fin.train_samples,
            seed: s.config().common().seed,
            space: s.space().clone(),
        };
        write_json(&result_path, &result)?;
        Ok(result)
    }

    /// [`run`](Self::run) on a task's splits: train and val for the search, test for the
    /// final evaluation only.
    pub fn run_task<B: AutodiffBackend>(
        &self,
        data: &TaskData,
        out: &Path,
        device: &B::Device,
    ) -> Result<SearchResult> {
        self.run::<B, TaskSplit>(SearchData::from_task(data), &data.test, out, device)
    }

    fn check_interrupt(&self, out: &Path, completed: usize) -> Result<()> {
        match &self.interrupt {
            Some(flag) if flag.load(Ordering::SeqCst) => Err(SearchError::Interrupted {
                dir: out.to_path_buf(),
                completed,
            }),
            _ => Ok(()),
        }
    }
}

/// Index of the first largest value.
pub(crate) fn argmax_first(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Reads a checkpoint, first checking its format tag (a directory of another search is a
/// [`SearchError::ConfigMismatch`] on `format`, not a parse error).
fn read_checkpoint<T: DeserializeOwned>(path: &Path, format: &str) -> Result<Option<T>> {
    let Some(value) = read_json::<serde_json::Value>(path)? else {
        return Ok(None);
    };
    let stored = value
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or("(none)");
    if stored != format {
        return Err(SearchError::ConfigMismatch(SettingsMismatch {
            what: "search",
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            field: "format".into(),
            stored: stored.to_string(),
            requested: format.to_string(),
        }));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| SearchError::json(path, e))
}

#[cfg(test)]
mod tests {
    use super::argmax_first;

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax_first(&[0.2, 0.5, 0.5]), 1);
        assert_eq!(argmax_first(&[0.5, 0.5]), 0);
    }
}
