//! Relaywatch's audit rules, pure: DNS answers in, findings out (SPF, DKIM, DMARC, MX, reverse DNS, MTA-STS, TLS-RPT,
//! BIMI, DNSBL return codes). It will do no I/O: the worker resolves, this crate judges. Filled by the domain-audit
//! and blocklist issues; today it owns nothing else.
