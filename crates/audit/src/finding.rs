//! Findings: what an audit says, each with a stable code, a severity, the thing it is about, the evidence, the rule
//! it rests on and what to do.

use serde::{Deserialize, Serialize};

/// How much a finding matters for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Mail is, or will be, rejected or sent to spam because of this.
    Error,
    /// A weakness receivers or a standard frown upon; fix it before it becomes an error.
    Warning,
    /// Worth knowing; not a problem by itself.
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A rule of the catalog: the fixed part of every finding with its code.
#[derive(Debug)]
pub struct Rule {
    /// Stable code, `<area>.<name>`; never renamed, because alerts and scripts match on it.
    pub code: &'static str,
    pub severity: Severity,
    /// One line a mail operator understands.
    pub title: &'static str,
    /// The RFC section or provider rule the finding rests on.
    pub reference: &'static str,
    pub remediation: &'static str,
}

/// One problem (or fact) found by an audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub severity: Severity,
    pub title: String,
    /// What the finding is about: a domain, `selector._domainkey.domain`, an IP address or an MX host.
    pub subject: String,
    /// The record text, the lookup chain or the server's answer that shows the problem.
    pub evidence: String,
    pub reference: String,
    pub remediation: String,
}

impl Finding {
    pub fn new(rule: &Rule, subject: impl Into<String>, evidence: impl Into<String>) -> Self {
        Self {
            code: rule.code.to_string(),
            severity: rule.severity,
            title: rule.title.to_string(),
            subject: subject.into(),
            evidence: evidence.into(),
            reference: rule.reference.to_string(),
            remediation: rule.remediation.to_string(),
        }
    }

    /// The same rule with another severity, for rules whose weight depends on context (a bad certificate matters
    /// more when MTA-STS promises a good one).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The area a finding belongs to: the part of its code before the first dot.
    pub fn area(&self) -> &str {
        self.code.split('.').next().unwrap_or_default()
    }

    /// Identity across runs, for "new" and "resolved": the same code about the same subject.
    pub fn key(&self) -> (String, String) {
        (self.code.clone(), self.subject.clone())
    }
}

/// A check that could not be made (a DNS timeout, a refused connection). Never counted as passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotTested {
    /// `spf`, `dkim`, ... as in finding codes.
    pub area: String,
    pub subject: String,
    pub reason: String,
}

/// The whole result of auditing one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub domain: String,
    pub findings: Vec<Finding>,
    pub not_tested: Vec<NotTested>,
    pub scorecard: crate::grade::Scorecard,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }
}
