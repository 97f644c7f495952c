//! The coalition rules' one integration-test binary: cases per rule and property tests against small reference models.

mod charter;
mod fixtures;
mod goals;
mod pledges;
mod properties;
mod proposals;
mod register;
mod tally;
