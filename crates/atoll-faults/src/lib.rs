//! Jepsen-style fault tests for an atoll cluster.
//!
//! The `atoll-faults` binary starts the nodes itself, puts a TCP proxy on
//! every link between them, runs concurrent clients against single items
//! while a nemesis kills, pauses, restarts and partitions nodes, and then
//! checks that the recorded history is linearizable.

pub mod checker;
pub mod proxy;
