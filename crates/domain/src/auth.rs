//! Who may do what: API key scopes and user roles.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an API key (or a user's role) allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read the tenant's data: deliveries, statistics, findings, listings.
    Read,
    /// Change the tenant's configuration: sending domains and IPs, webhooks, alert rules.
    Write,
    /// Send log events from an agent (`POST /v1/ingest`).
    Ingest,
    /// Manage the tenant's API keys and users.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Ingest, Scope::Admin];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Ingest => "ingest",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`: expected one of read, write, ingest, admin")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "ingest" => Ok(Scope::Ingest),
            "admin" => Ok(Scope::Admin),
            other => Err(UnknownScope(other.to_string())),
        }
    }
}

/// A small, ordered set of scopes, stored as a comma-separated list (`read,write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub fn empty() -> Self {
        Self(0)
    }

    fn bit(scope: Scope) -> u8 {
        1 << (scope as u8)
    }

    pub fn with(mut self, scope: Scope) -> Self {
        self.0 |= Self::bit(scope);
        self
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    /// True when every scope in `other` is also in `self`: a key may only hand out what it holds.
    pub fn covers(&self, other: ScopeSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL.into_iter().filter(|s| self.contains(*s))
    }

    pub fn to_vec(&self) -> Vec<Scope> {
        self.iter().collect()
    }

    /// The stored form: `read,write`.
    pub fn to_db(&self) -> String {
        self.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn parse_db(s: &str) -> Result<Self, UnknownScope> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .try_fold(Self::empty(), |set, p| Ok(set.with(p.parse()?)))
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

/// A user's role inside their tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including ingest: the team lead who set the tenant up.
    Owner,
    /// Configuration and key management.
    Admin,
    /// Read-only: support staff answering "did my mail arrive?".
    Viewer,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// The scopes a user of this role holds when logged in with a token.
    pub fn scopes(&self) -> ScopeSet {
        match self {
            Role::Owner => Scope::ALL.into_iter().collect(),
            Role::Admin => [Scope::Read, Scope::Write, Scope::Admin]
                .into_iter()
                .collect(),
            Role::Viewer => [Scope::Read].into_iter().collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: expected one of owner, admin, viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_set_round_trips_through_its_stored_form() {
        let set: ScopeSet = [Scope::Write, Scope::Read].into_iter().collect();
        assert_eq!(set.to_db(), "read,write");
        assert_eq!(ScopeSet::parse_db("read,write").unwrap(), set);
        assert_eq!(ScopeSet::parse_db("").unwrap(), ScopeSet::empty());
        assert!(ScopeSet::parse_db("read,root").is_err());
    }

    #[test]
    fn covers_means_no_escalation() {
        let rw: ScopeSet = [Scope::Read, Scope::Write].into_iter().collect();
        let r: ScopeSet = [Scope::Read].into_iter().collect();
        let ra: ScopeSet = [Scope::Read, Scope::Admin].into_iter().collect();
        assert!(rw.covers(r));
        assert!(!r.covers(rw));
        assert!(!rw.covers(ra));
    }

    #[test]
    fn viewer_only_reads() {
        assert_eq!(Role::Viewer.scopes().to_vec(), vec![Scope::Read]);
        assert!(Role::Owner.scopes().contains(Scope::Ingest));
        assert!(!Role::Admin.scopes().contains(Scope::Ingest));
    }
}
