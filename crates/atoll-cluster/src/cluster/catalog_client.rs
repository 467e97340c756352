//! The catalog client: how this node changes the catalog (through its
//! leader, wherever that is) and reads it (its own replica, caught up with
//! the leader when a lookup misses).

use std::sync::Arc;
use std::time::Duration;

use atoll_model::table::{TableDefinition, TableStatus};
use atoll_replication::{Group, GroupId, NodeId, ReplicationError};

use super::rpc::{self, Peers};
use super::{CATALOG_CATCH_UP, CATALOG_GROUP_ID, CATALOG_RETRY};
use crate::catalog::{CatalogCommand, CatalogOutcome, CatalogStateMachine};
use crate::error::ClusterError;

/// This node's access to the catalog: its replica of the catalog's state,
/// the catalog's Raft group, and the way to its leader.
pub struct CatalogClient {
    state: Arc<CatalogStateMachine>,
    group: Group<CatalogOutcome>,
    peers: Peers,
    // When the last catch-up that succeeded began (see `catch_up`); held
    // while one runs.
    last_catch_up: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl CatalogClient {
    pub(super) fn new(
        state: Arc<CatalogStateMachine>,
        group: Group<CatalogOutcome>,
        peers: Peers,
    ) -> Self {
        CatalogClient {
            state,
            group,
            peers,
            last_catch_up: tokio::sync::Mutex::new(None),
        }
    }

    /// This node's replica of the catalog's state, as far as it has applied.
    pub(super) fn view(&self) -> &CatalogStateMachine {
        &self.state
    }

    /// The nodes other than this one that the catalog places `group` on.
    pub(super) fn other_replicas(&self, group: GroupId) -> Vec<NodeId> {
        let me = self.peers.node_id();
        self.state
            .replicas(group)
            .into_iter()
            .filter(|node| *node != me)
            .collect()
    }

    /// The catalog's leader, as this replica knows it.
    fn leader(&self) -> Result<NodeId, ClusterError> {
        self.group
            .current_leader()
            .ok_or(ClusterError::Replication(ReplicationError::NotLeader {
                group: CATALOG_GROUP_ID,
                leader: None,
            }))
    }

    /// The catalog's Raft group.
    pub(super) fn group(&self) -> &Group<CatalogOutcome> {
        &self.group
    }

    /// Applies `command` to the catalog through its leader, wherever that
    /// is, and returns once this node's catalog has applied it too (so what
    /// a request changed, the next request to this node sees).
    pub(super) async fn propose(
        &self,
        command: CatalogCommand,
    ) -> Result<CatalogOutcome, ClusterError> {
        let deadline = tokio::time::Instant::now() + CATALOG_RETRY;
        let mut attempt = 0u32;
        loop {
            let outcome = if self.group.is_leader() {
                self.propose_here(command.clone()).await
            } else {
                self.propose_remotely(&command).await
            };
            match outcome {
                Ok(outcome) => return Ok(outcome),
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "catalog change retried");
                }
                Err(e) => return Err(e),
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis((5u64 << attempt.min(5)).min(200))).await;
        }
    }

    pub(super) async fn propose_here(
        &self,
        command: CatalogCommand,
    ) -> Result<CatalogOutcome, ClusterError> {
        Ok(self.propose_here_indexed(command).await?.0)
    }

    /// `propose_here`, also returning the log index it was applied at.
    pub(super) async fn propose_here_indexed(
        &self,
        command: CatalogCommand,
    ) -> Result<(CatalogOutcome, u64), ClusterError> {
        let bytes = command.encode()?;
        let (output, index) = self
            .group
            .propose_indexed(bytes::Bytes::from(bytes))
            .await?;
        Ok((output, index))
    }

    async fn propose_remotely(
        &self,
        command: &CatalogCommand,
    ) -> Result<CatalogOutcome, ClusterError> {
        let leader = self.leader()?;
        let request = rpc::ClusterRequest::CatalogCommand(crate::catalog::encode_command(command)?);
        match self.peers.forward(leader, &request).await? {
            rpc::ClusterReply::CatalogOutcome {
                outcome,
                applied_index,
            } => {
                let outcome = crate::catalog::decode_outcome(&outcome)?;
                self.group
                    .wait_applied(applied_index, CATALOG_RETRY)
                    .await?;
                Ok(outcome)
            }
            other => Err(other.into_error(CATALOG_GROUP_ID, leader)),
        }
    }

    pub(super) async fn set_status(
        &self,
        table: &TableDefinition,
        status: TableStatus,
    ) -> Result<(), ClusterError> {
        self.propose(CatalogCommand::SetStatus {
            name: table.name.clone(),
            table_id: table.table_id.clone(),
            status,
        })
        .await?
        .map_err(|r| r.into_error(&table.name))?;
        Ok(())
    }

    /// The table called `name` in any state (DescribeTable shows all states).
    pub fn table(&self, name: &str) -> Option<Arc<TableDefinition>> {
        self.state.table(name)
    }

    /// The table called `name` if it can serve item requests.
    pub fn active_table(&self, name: &str) -> Result<Arc<TableDefinition>, ClusterError> {
        match self.state.table(name) {
            Some(t) if matches!(t.status, TableStatus::Active | TableStatus::Updating) => Ok(t),
            _ => Err(ClusterError::TableNotFound(name.to_string())),
        }
    }

    /// The table called `name` in any state; one this node's catalog does not know yet is looked
    /// up again once the catalog caught up with its leader: right after a
    /// CreateTable through another node, this node may not have applied it.
    pub async fn table_or_catch_up(&self, name: &str) -> Option<Arc<TableDefinition>> {
        if let Some(table) = self.table(name) {
            return Some(table);
        }
        self.catch_up().await;
        self.table(name)
    }

    /// `active_table`, looked up again after catching up as `table_or_catch_up` does.
    pub async fn active_table_or_catch_up(
        &self,
        name: &str,
    ) -> Result<Arc<TableDefinition>, ClusterError> {
        match self.active_table(name) {
            Ok(table) => Ok(table),
            Err(_) => {
                self.catch_up().await;
                self.active_table(name)
            }
        }
    }

    /// `table_names` once this node's catalog caught up with its leader,
    /// so that a table just created through another node is listed.
    pub async fn table_names_caught_up(&self) -> Vec<String> {
        self.catch_up().await;
        self.table_names()
    }

    /// Waits until this node's catalog has applied what the catalog's
    /// leader had when asked. Best effort: without an answer in time the
    /// node goes on with what it has. Catch-ups run one at a time, and one
    /// that began after this call did serves it too: a burst of requests
    /// for a missing table costs the catalog's leader one or two round
    /// trips, not one each.
    pub(super) async fn catch_up(&self) {
        let asked = tokio::time::Instant::now();
        let mut last_began = self.last_catch_up.lock().await;
        if last_began.is_some_and(|began| began >= asked) {
            return;
        }
        let began = tokio::time::Instant::now();
        match self.try_catch_up().await {
            Ok(()) => *last_began = Some(began),
            Err(e) => {
                tracing::debug!(error = %e, "could not catch up with the catalog's leader");
            }
        }
    }

    /// `catch_up`, saying whether it did.
    pub(super) async fn try_catch_up(&self) -> Result<(), ClusterError> {
        let caught_up = async {
            if self.group.is_leader() {
                return Ok::<_, ClusterError>(self.group.read_barrier().await?);
            }
            let leader = self.leader()?;
            match self
                .peers
                .forward(leader, &rpc::ClusterRequest::CatalogIndex)
                .await?
            {
                rpc::ClusterReply::CatalogIndex { applied_index } => Ok(self
                    .group
                    .wait_applied(applied_index, CATALOG_CATCH_UP)
                    .await?),
                other => Err(other.into_error(CATALOG_GROUP_ID, leader)),
            }
        };
        caught_up.await
    }

    /// Names of all tables, in order.
    pub fn table_names(&self) -> Vec<String> {
        self.state
            .tables()
            .iter()
            // Hidden tables (global indexes', the transaction ledger, all
            // named with a `/`) are no user's to list.
            .filter(|t| t.index_of.is_none() && !t.name.contains('/'))
            .map(|t| t.name.clone())
            .collect()
    }
}
