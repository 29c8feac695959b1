//! The float tensor ops tanas-cpu implements itself (the generated `forward.rs` calls these
//! by name).

pub(crate) use crate::binary::{float_add, float_div, float_mul, float_sub};
pub(crate) use crate::copy::float_reshape;
