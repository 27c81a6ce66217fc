//! Layer 4: moving checkpoints between repositories. Which remote and URL ([`remote`]), the batched push with
//! queue accounting ([`push`]), lazy and pull-along fetches ([`fetch`]), and the `Entire-Checkpoint` trailers that
//! link code commits to checkpoints ([`linked`]).
//!
//! Network transfer is git's: these modules run git children or relay to git's own helpers.

pub mod fetch;
pub mod lazy;
pub mod linked;
pub mod merge;
pub mod policy;
pub mod push;
pub mod remote;
pub mod shared;
