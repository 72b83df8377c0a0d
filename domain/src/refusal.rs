//! Refusals: every rule the deciders enforce names its policy clause.

use std::fmt;

/// Clause ids of the catalogue (`docs/policy/catalogue.md`) that the domain may cite. A refusal citing anything
/// else is a bug (checked in debug builds and by the tests).
pub const KNOWN_CLAUSES: &[&str] = &[
    "P2(1)",
    "P2(2)",
    "P2(3)",
    "P3.1",
    "P3.1(1)",
    "P3.1(2)",
    "P3.1(3)",
    "P3.1(4)",
    "P3.2",
    "P3.4",
    "P4.5(3)",
    "P4.6(1)",
    "P4.6(2)",
    "P4.8(1)",
    "P4.8(2)",
    "P4.8(3)",
    "P4.9",
    "P4.11(1)",
    "P4.11(3)",
    "P4.11(4)",
    "P4.11(5)",
    "P4.12(1)",
    "P4.12(2)",
    "P4.13(1)",
    "P4.13(2)",
    "P4.13(3)",
    "P5.1",
    "P7",
    "P8",
    "P9",
    // The operational half of the policy, cited by `mebyo-operations`: one
    // catalogue of the policy, whichever crate enforces a clause.
    "P4.3",
    "P4.4",
    "P4.4(1)",
    "P4.4(2)",
    "P4.4(3)",
    "P4.5(1)",
    "P4.5(2)",
    "P4.5(1)(2)",
    "P4.13",
    "P4.7(1)",
    "P4.7(2)",
    "P4.9(1)",
    "P4.9(2)",
    "P4.9(3)",
    "P4.10",
    "P4.14(1)",
    "P4.14(2)",
    "P4.14(3)",
    "P4.14(4)",
    "P4.14(5)",
];

/// Whether `clause` is in [`KNOWN_CLAUSES`]; `const`, so that [`clause!`]
/// checks each citation while compiling.
pub const fn is_known(clause: &str) -> bool {
    let mut i = 0;
    while i < KNOWN_CLAUSES.len() {
        if bytes_eq(KNOWN_CLAUSES[i].as_bytes(), clause.as_bytes()) {
            return true;
        }
        i += 1;
    }
    false
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A clause id of the catalogue, checked by the compiler (issue 15 §6): a
/// citation of a clause that is not in [`KNOWN_CLAUSES`] does not build. It
/// is the string itself, so it goes wherever a clause id does. Every citation
/// outside tests uses it (`tests/tests/architecture.rs` checks).
///
/// ```
/// let c: &str = mebyo_domain::clause!("P4.13(2)");
/// assert_eq!(c, "P4.13(2)");
/// ```
///
/// ```compile_fail
/// let c: &str = mebyo_domain::clause!("P99.9");
/// ```
#[macro_export]
macro_rules! clause {
    ($c:literal) => {{
        const _: () = assert!(
            $crate::refusal::is_known($c),
            concat!(
                "not a clause of the catalogue (mebyo_domain::refusal::KNOWN_CLAUSES): ",
                $c
            )
        );
        $c
    }};
}

/// Why a command or an access was refused: a stable code, the clause, and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable machine code such as `consent.none`.
    pub code: &'static str,
    /// Policy clause such as `P4.6(2)`.
    pub clause: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, clause: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(KNOWN_CLAUSES.contains(&clause), "unknown clause {clause}");
        Self {
            code,
            clause,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused under {}: {} ({})",
            self.clause, self.message, self.code
        )
    }
}

impl std::error::Error for Refusal {}

/// `Err(Refusal)` unless `ok`.
pub(crate) fn ensure(
    ok: bool,
    code: &'static str,
    clause: &'static str,
    message: &str,
) -> Result<(), Refusal> {
    if ok {
        Ok(())
    } else {
        Err(Refusal::new(code, clause, message))
    }
}

pub(crate) fn refuse<T>(
    code: &'static str,
    clause: &'static str,
    message: impl Into<String>,
) -> Result<T, Refusal> {
    Err(Refusal::new(code, clause, message))
}
