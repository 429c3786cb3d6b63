//! One module per subcommand of `weir`.

pub(crate) mod check;
pub(crate) mod checkpoints;
pub(crate) mod dataset;
pub(crate) mod gen;
pub(crate) mod run;
pub(crate) mod score;
pub(crate) mod tables;
pub(crate) mod train;
