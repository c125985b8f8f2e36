//! How functions are named and addressed: bare names, `name:qualifier`, partial and full
//! ARNs (lambda-interfaces.md §1.8), and the region/account that make up our ARNs.

use thiserror::Error;

/// The region and account this Nimbus answers as; both are configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub region: String,
    pub account_id: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        }
    }
}

impl Identity {
    /// `arn:aws:lambda:<region>:<account>:function:<name>`
    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, name
        )
    }

    /// The function ARN with a `:qualifier` suffix.
    pub fn qualified_arn(&self, name: &str, qualifier: &str) -> String {
        format!("{}:{}", self.function_arn(name), qualifier)
    }

    /// The ARN a caller addressed: qualified when it named a qualifier.
    pub fn arn(&self, name: &str, qualifier: Option<&str>) -> String {
        match qualifier {
            Some(q) => self.qualified_arn(name, q),
            None => self.function_arn(name),
        }
    }
}

/// Why a name or ARN was refused; the API layer maps these to `ValidationException` or
/// `InvalidParameterValueException`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("1 validation error detected: Value '{0}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?")]
    Pattern(String),
    #[error("1 validation error detected: Value '{0}' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to {1}")]
    TooLong(String, usize),
    #[error("1 validation error detected: Value '{0}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)")]
    Qualifier(String),
    #[error(
        "The derived qualifier from the function name does not match the specified qualifier."
    )]
    QualifierMismatch,
    #[error("{0}")]
    ForeignArn(String),
}

/// A function as named by a caller: which function, and which version or alias of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
}

/// A bare function name: 1–64 of `[a-zA-Z0-9-_]`.
pub fn is_valid_function_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A qualifier: `$LATEST`, a version number or an alias name.
pub fn is_valid_qualifier(q: &str) -> bool {
    q == "$LATEST"
        || (!q.is_empty()
            && q.len() <= 128
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

impl FunctionRef {
    /// Parses `name`, `name:qualifier`, `account:function:name[:qualifier]` or
    /// `arn:aws:lambda:region:account:function:name[:qualifier]`, checking that an ARN names
    /// our own region and account. `max_len` is the operation's limit (140 or 256).
    pub fn parse(input: &str, identity: &Identity, max_len: usize) -> Result<Self, NameError> {
        if input.len() > max_len {
            return Err(NameError::TooLong(input.to_string(), max_len));
        }
        let parts: Vec<&str> = input.split(':').collect();
        let pattern = || NameError::Pattern(input.to_string());
        let (name, qualifier, region, account) = match parts.as_slice() {
            [name] => (*name, None, None, None),
            [name, q] => (*name, Some(*q), None, None),
            [acct, "function", name] => (*name, None, None, Some(*acct)),
            [acct, "function", name, q] => (*name, Some(*q), None, Some(*acct)),
            ["arn", partition, "lambda", region, acct, "function", name] => {
                check_partition(partition).ok_or_else(pattern)?;
                (*name, None, Some(*region), Some(*acct))
            }
            ["arn", partition, "lambda", region, acct, "function", name, q] => {
                check_partition(partition).ok_or_else(pattern)?;
                (*name, Some(*q), Some(*region), Some(*acct))
            }
            _ => return Err(pattern()),
        };
        if !is_valid_function_name(name) {
            return Err(pattern());
        }
        if let Some(q) = qualifier {
            if !is_valid_qualifier(q) {
                return Err(pattern());
            }
        }
        if let Some(acct) = account {
            if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
                return Err(pattern());
            }
            if acct != identity.account_id {
                return Err(NameError::ForeignArn(format!(
                    "The account ID in the ARN ({acct}) does not match this endpoint's account ({})",
                    identity.account_id
                )));
            }
        }
        if let Some(region) = region {
            if region != identity.region {
                return Err(NameError::ForeignArn(format!(
                    "The region in the ARN ({region}) does not match this endpoint's region ({})",
                    identity.region
                )));
            }
        }
        Ok(FunctionRef {
            name: name.to_string(),
            qualifier: qualifier.map(str::to_string),
        })
    }

    /// Merges a `Qualifier` query parameter into a parsed reference; they must agree.
    pub fn with_query_qualifier(mut self, query: Option<&str>) -> Result<Self, NameError> {
        match (query, &self.qualifier) {
            (None, _) | (Some(""), _) => Ok(self),
            (Some(q), _) if !is_valid_qualifier(q) => Err(NameError::Qualifier(q.to_string())),
            (Some(q), Some(existing)) if existing != q => Err(NameError::QualifierMismatch),
            (Some(q), _) => {
                self.qualifier = Some(q.to_string());
                Ok(self)
            }
        }
    }

    /// The qualifier that applies: an unqualified reference means `$LATEST`.
    pub fn effective_qualifier(&self) -> &str {
        self.qualifier.as_deref().unwrap_or("$LATEST")
    }
}

fn check_partition(p: &str) -> Option<()> {
    p.starts_with("aws").then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<FunctionRef, NameError> {
        FunctionRef::parse(s, &Identity::default(), 256)
    }

    #[test]
    fn accepts_every_documented_form() {
        let plain = FunctionRef {
            name: "my-fn_1".into(),
            qualifier: None,
        };
        assert_eq!(parse("my-fn_1").unwrap(), plain);
        assert_eq!(parse("000000000000:function:my-fn_1").unwrap(), plain);
        assert_eq!(
            parse("arn:aws:lambda:us-east-1:000000000000:function:my-fn_1").unwrap(),
            plain
        );
        let q = parse("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST").unwrap();
        assert_eq!(q.qualifier.as_deref(), Some("$LATEST"));
        assert_eq!(parse("f:prod").unwrap().qualifier.as_deref(), Some("prod"));
        assert_eq!(
            parse("000000000000:function:f:7")
                .unwrap()
                .qualifier
                .as_deref(),
            Some("7")
        );
    }

    #[test]
    fn refuses_bad_names_and_foreign_arns() {
        assert!(matches!(parse("bad name"), Err(NameError::Pattern(_))));
        assert!(matches!(parse(""), Err(NameError::Pattern(_))));
        assert!(matches!(parse(&"a".repeat(65)), Err(NameError::Pattern(_))));
        assert!(matches!(parse("a:b:c:d:e"), Err(NameError::Pattern(_))));
        assert!(matches!(parse("f:bad/q"), Err(NameError::Pattern(_))));
        assert!(matches!(
            parse("arn:aws:lambda:eu-west-1:000000000000:function:f"),
            Err(NameError::ForeignArn(_))
        ));
        assert!(matches!(
            parse("123456789012:function:f"),
            Err(NameError::ForeignArn(_))
        ));
        assert!(matches!(
            FunctionRef::parse(&"a".repeat(141), &Identity::default(), 140),
            Err(NameError::TooLong(..))
        ));
    }

    #[test]
    fn query_qualifier_must_agree() {
        let r = parse("f:1").unwrap();
        assert_eq!(
            r.clone()
                .with_query_qualifier(Some("1"))
                .unwrap()
                .qualifier
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            r.with_query_qualifier(Some("2")),
            Err(NameError::QualifierMismatch)
        );
        let r = parse("f")
            .unwrap()
            .with_query_qualifier(Some("$LATEST"))
            .unwrap();
        assert_eq!(r.effective_qualifier(), "$LATEST");
    }
}
