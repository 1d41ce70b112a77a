//! A score and letter grade per domain, and a status per area, for a dashboard's scorecard.

use crate::finding::{Finding, NotTested, Severity};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    F,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaStatus {
    Pass,
    Warning,
    Fail,
    NotTested,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaScore {
    pub area: String,
    pub status: AreaStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scorecard {
    /// 0 to 100: 100 minus 20 per error and 5 per warning.
    pub score: u8,
    pub grade: Grade,
    /// False when some check could not be made: the grade is then an upper bound.
    pub complete: bool,
    pub areas: Vec<AreaScore>,
}

/// Every area an audit covers, in report order.
pub const AREAS: &[&str] = &[
    "spf", "dkim", "dmarc", "mx", "ptr", "mta_sts", "tls_rpt", "bimi", "smtp_tls",
];

/// An error costs a grade step on its own; warnings add up.
pub fn scorecard(findings: &[Finding], not_tested: &[NotTested], areas: &[&str]) -> Scorecard {
    let penalty: u32 = findings
        .iter()
        .map(|f| match f.severity {
            Severity::Error => 20,
            Severity::Warning => 5,
            Severity::Info => 0,
        })
        .sum();
    let score = 100u32.saturating_sub(penalty) as u8;
    let errors = findings.iter().any(|f| f.severity == Severity::Error);
    let grade = match score {
        90.. if !errors => Grade::A,
        75.. => Grade::B,
        60.. => Grade::C,
        40.. => Grade::D,
        _ => Grade::F,
    };
    let areas = areas
        .iter()
        .map(|area| {
            let worst = findings
                .iter()
                .filter(|f| f.area() == *area)
                .map(|f| f.severity)
                .min();
            let status = match worst {
                Some(Severity::Error) => AreaStatus::Fail,
                _ if not_tested.iter().any(|n| n.area == *area) => AreaStatus::NotTested,
                Some(Severity::Warning) => AreaStatus::Warning,
                _ => AreaStatus::Pass,
            };
            AreaScore {
                area: area.to_string(),
                status,
            }
        })
        .collect();
    Scorecard {
        score,
        grade,
        complete: not_tested.is_empty(),
        areas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_rules_out_an_a_and_timeouts_are_not_passes() {
        let error = Finding::new(&crate::spf::MISSING, "x.example", "");
        let s = scorecard(&[error], &[], AREAS);
        assert_eq!((s.score, s.grade), (80, Grade::B));
        assert_eq!(s.areas[0].status, AreaStatus::Fail);
        let nt = NotTested {
            area: "dkim".into(),
            subject: "s".into(),
            reason: "timeout".into(),
        };
        let s = scorecard(&[], &[nt], AREAS);
        assert_eq!(s.grade, Grade::A);
        assert!(!s.complete);
        assert_eq!(s.areas[1].status, AreaStatus::NotTested);
    }
}
