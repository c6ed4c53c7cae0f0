pub mod capture;
pub mod harness;
pub mod model;
