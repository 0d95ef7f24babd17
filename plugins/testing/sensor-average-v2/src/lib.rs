//! `sensor-average` version 2, for upgrade tests: the same source (and the
//! same state), built with the `v2` feature, which adds `"version": 2` to
//! every result.

#[path = "../../../sensor-average/src/lib.rs"]
mod sensor_average;
