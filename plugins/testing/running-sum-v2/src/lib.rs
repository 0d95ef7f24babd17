//! `running-sum` version 2: the same source built with its `v2` feature.

#[path = "../../running-sum/src/lib.rs"]
mod running_sum;
