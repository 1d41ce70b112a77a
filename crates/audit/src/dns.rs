//! DNS answers as the rules see them: the worker fills an [`Answers`] map, the rules read it.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordType {
    A,
    Aaaa,
    Mx,
    Txt,
    Ptr,
}

/// A question: a name (lowercase, without the trailing dot) and a type. PTR questions carry the IP address as
/// their name, so callers do not build `in-addr.arpa` names themselves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Query {
    pub name: String,
    pub rtype: RecordType,
}

impl Query {
    pub fn new(name: &str, rtype: RecordType) -> Self {
        Self {
            name: normalize(name),
            rtype,
        }
    }

    pub fn ptr(ip: IpAddr) -> Self {
        Self {
            name: ip.to_string(),
            rtype: RecordType::Ptr,
        }
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.name, self.rtype)
    }
}

/// Lowercase, no trailing dot: the one spelling every rule compares.
pub fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx {
        preference: u16,
        exchange: String,
    },
    /// The character-strings of one TXT record, as published (each at most 255 bytes on the wire).
    Txt(Vec<Vec<u8>>),
    Ptr(String),
    /// An alias met while answering (the name asked for is a CNAME to this target).
    Cname(String),
}

/// What the DNS said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// The name exists; these are its records of the type asked for, possibly with CNAMEs met on the way. Empty
    /// means NODATA (the name exists with other types only).
    Records(Vec<Rdata>),
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// No answer: timeout, SERVFAIL, REFUSED. Whatever depends on it is "not tested".
    Failed(String),
}

pub type Answers = HashMap<Query, Answer>;

/// One lookup as a rule sees it.
pub enum Lookup<'a> {
    /// Not asked yet: the caller has recorded it as missing; skip the check for this round.
    Pending,
    Failed(&'a str),
    /// Nothing there (NXDOMAIN or NODATA): a "void lookup" in SPF's terms.
    Empty {
        nxdomain: bool,
    },
    Found(&'a [Rdata]),
}

/// Reads answers and remembers what is still missing.
pub struct Resolver<'a> {
    answers: &'a Answers,
    pub(crate) missing: std::collections::BTreeSet<Query>,
}

impl<'a> Resolver<'a> {
    pub fn new(answers: &'a Answers) -> Self {
        Self {
            answers,
            missing: Default::default(),
        }
    }

    pub fn lookup(&mut self, q: Query) -> Lookup<'a> {
        match self.answers.get(&q) {
            None => {
                self.missing.insert(q);
                Lookup::Pending
            }
            Some(Answer::Failed(why)) => Lookup::Failed(why),
            Some(Answer::NxDomain) => Lookup::Empty { nxdomain: true },
            Some(Answer::Records(r)) => {
                if r.iter().all(|d| matches!(d, Rdata::Cname(_))) {
                    Lookup::Empty { nxdomain: false }
                } else {
                    Lookup::Found(r)
                }
            }
        }
    }

    /// TXT records of a name, each joined from its strings (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    pub fn txt(&mut self, name: &str) -> Lookup<'a> {
        self.lookup(Query::new(name, RecordType::Txt))
    }
}

/// The joined text of every TXT record in `records`, lossily decoded (a record that is not UTF-8 is still shown).
pub fn txt_strings(records: &[Rdata]) -> Vec<TxtRecord> {
    records
        .iter()
        .filter_map(|r| match r {
            Rdata::Txt(parts) => Some(TxtRecord {
                text: String::from_utf8_lossy(&parts.concat()).into_owned(),
                longest_string: parts.iter().map(Vec::len).max().unwrap_or(0),
                bytes: parts.iter().map(Vec::len).sum(),
            }),
            _ => None,
        })
        .collect()
}

/// One TXT record, joined.
#[derive(Debug, Clone)]
pub struct TxtRecord {
    pub text: String,
    pub longest_string: usize,
    pub bytes: usize,
}

/// Addresses in an A/AAAA answer.
pub fn addresses(records: &[Rdata]) -> Vec<IpAddr> {
    records
        .iter()
        .filter_map(|r| match r {
            Rdata::A(a) => Some(IpAddr::V4(*a)),
            Rdata::Aaaa(a) => Some(IpAddr::V6(*a)),
            _ => None,
        })
        .collect()
}

/// The first CNAME target in an answer, if the name asked for was an alias.
pub fn cname(records: &[Rdata]) -> Option<&str> {
    records.iter().find_map(|r| match r {
        Rdata::Cname(t) => Some(t.as_str()),
        _ => None,
    })
}
