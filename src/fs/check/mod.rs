//! Checks and repair across the owners: the namespace's counts (`tree`), the budget's
//! counters (`usage`), the content store against the recipes (`fsck`), counts for
//! statistics (`census`), and the repair after a panic (`repair`).

mod census;
mod fsck;
mod repair;
mod tree;
mod usage;

pub use census::Census;
pub use fsck::StoreCheck;
