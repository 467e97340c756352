//! DynamoDB's framework constraint errors: "N validation errors detected: ...".
//!
//! DynamoDB checks every member of the input against its model constraints
//! (not null, length, range, pattern, enum) and reports all violations at
//! once. It visits the members in the iteration order of a Java `HashMap`
//! keyed by the lower-camel member names, which is what [`member_ranks`]
//! reproduces, so that multi-error messages list errors in DynamoDB's order.

/// Most errors DynamoDB lists in one message.
const MAX_REPORTED: usize = 10;

/// Java's `String.hashCode`, over UTF-16 code units.
fn java_string_hash(name: &str) -> i32 {
    name.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Rank of each member in the iteration order of a `HashMap` holding `members`
/// (inserted in the given order).
pub fn member_ranks(members: &[&str]) -> Vec<usize> {
    let mut capacity: usize = 16;
    while members.len() as f64 > 0.75 * capacity as f64 {
        capacity *= 2;
    }
    let mut slots: Vec<(usize, usize)> = members
        .iter()
        .enumerate()
        .map(|(insertion, name)| {
            let hash = java_string_hash(name);
            let spread = hash ^ ((hash as u32) >> 16) as i32;
            ((spread as u32 as usize) & (capacity - 1), insertion)
        })
        .collect();
    slots.sort();
    let mut ranks = vec![0; members.len()];
    for (rank, (_, insertion)) in slots.into_iter().enumerate() {
        if let Some(slot) = ranks.get_mut(insertion) {
            *slot = rank;
        }
    }
    ranks
}

/// Constraint violations of one request, collected then reported together.
pub struct Violations {
    members: &'static [&'static str],
    ranks: Vec<usize>,
    found: Vec<(usize, usize, String)>,
}

/// How a value appears in a violation message.
pub enum Shown<'a> {
    /// `Value null at ...`.
    Null,
    /// `Value '<text>' at ...`.
    Text(&'a str),
}

impl Violations {
    /// A collector for an input shape with these members (lower camel, model order).
    pub fn new(members: &'static [&'static str]) -> Self {
        Violations {
            members,
            ranks: member_ranks(members),
            found: Vec::new(),
        }
    }

    /// Records a violation at `path`, ordered by its top-level `member`.
    pub fn add(&mut self, member: &str, value: Shown<'_>, path: &str, constraint: &str) {
        let rank = self
            .members
            .iter()
            .position(|m| *m == member)
            .and_then(|i| self.ranks.get(i).copied())
            .unwrap_or(usize::MAX);
        let shown = match value {
            Shown::Null => "null".to_string(),
            Shown::Text(text) => format!("'{text}'"),
        };
        let sequence = self.found.len();
        self.found.push((
            rank,
            sequence,
            format!("Value {shown} at '{path}' failed to satisfy constraint: {constraint}"),
        ));
    }

    /// Records `Member must not be null` for a missing member.
    pub fn not_null(&mut self, member: &str, path: &str) {
        self.add(member, Shown::Null, path, "Member must not be null");
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The ValidationException for what was found, if anything.
    pub fn into_result(mut self) -> crate::error::ApiResult<()> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found
            .sort_by_key(|(rank, sequence, _)| (*rank, *sequence));
        let count = self.found.len().min(MAX_REPORTED);
        let noun = if count == 1 { "error" } else { "errors" };
        let details: Vec<String> = self
            .found
            .into_iter()
            .take(MAX_REPORTED)
            .map(|(_, _, text)| text)
            .collect();
        Err(crate::error::ApiError::validation(format!(
            "{count} validation {noun} detected: {}",
            details.join("; ")
        )))
    }
}

/// The constraint text of an enum member.
pub fn enum_constraint(values: &[&str]) -> String {
    format!(
        "Member must satisfy enum value set: [{}]",
        values.join(", ")
    )
}

/// Pattern constraint of table and index names.
pub const NAME_PATTERN_CONSTRAINT: &str =
    "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+";

/// Whether `name` matches `[a-zA-Z0-9_.-]+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Checks a table name against DynamoDB's model constraints (`min_length` is 3
/// for control-plane operations and 1 for data-plane ones, which also accept ARNs).
pub fn check_table_name(
    violations: &mut Violations,
    member: &str,
    path: &str,
    name: &str,
    min_length: usize,
) {
    let length = name.chars().count();
    if length < min_length {
        violations.add(
            member,
            Shown::Text(name),
            path,
            &format!("Member must have length greater than or equal to {min_length}"),
        );
    }
    // Data-plane operations also take a table ARN (up to 1024 characters);
    // a plain name is limited to 255 everywhere.
    let is_arn = name.starts_with("arn:");
    if length > 255 && !is_arn {
        violations.add(
            member,
            Shown::Text(name),
            path,
            "Member must have length less than or equal to 255",
        );
    }
    if length > 1024 && is_arn {
        violations.add(
            member,
            Shown::Text(name),
            path,
            "Member must have length less than or equal to 1024",
        );
    }
    // An empty data-plane name only violates the length; an ARN has its own rules.
    let exempt = name.starts_with("arn:") || (min_length == 1 && name.is_empty());
    if !exempt && !is_valid_name(name) {
        violations.add(member, Shown::Text(name), path, NAME_PATTERN_CONSTRAINT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(members: &[&'static str]) -> Vec<&'static str> {
        let ranks = member_ranks(members);
        let mut ordered: Vec<(usize, &'static str)> =
            ranks.into_iter().zip(members.iter().copied()).collect();
        ordered.sort();
        ordered.into_iter().map(|(_, m)| m).collect()
    }

    #[test]
    fn member_order_matches_dynamodbs_observed_order() {
        // Observed on real DynamoDB (see docs/dynamodb-behaviour notes): PutItem
        // reports returnValues, then returnConsumedCapacity, then
        // returnItemCollectionMetrics, with tableName last.
        let put_item = [
            "tableName",
            "item",
            "expected",
            "returnValues",
            "returnConsumedCapacity",
            "returnItemCollectionMetrics",
            "conditionalOperator",
            "conditionExpression",
            "expressionAttributeNames",
            "expressionAttributeValues",
            "returnValuesOnConditionCheckFailure",
        ];
        let ordered = order(&put_item);
        let position = |m: &str| ordered.iter().position(|x| *x == m).unwrap_or(usize::MAX);
        assert!(position("returnValues") < position("returnConsumedCapacity"));
        assert!(position("returnConsumedCapacity") < position("returnItemCollectionMetrics"));
        assert_eq!(ordered.last().copied(), Some("tableName"));
        // ProvisionedThroughput reports write before read; KeySchemaElement
        // attributeName before keyType; AttributeDefinition attributeType first.
        assert_eq!(
            order(&["readCapacityUnits", "writeCapacityUnits"]),
            vec!["writeCapacityUnits", "readCapacityUnits"]
        );
        assert_eq!(
            order(&["attributeName", "keyType"]),
            vec!["attributeName", "keyType"]
        );
        assert_eq!(
            order(&["attributeName", "attributeType"]),
            vec!["attributeType", "attributeName"]
        );
    }

    #[test]
    fn several_violations_are_reported_together_in_order() {
        let mut violations = Violations::new(&["tableName", "limit"]);
        violations.add(
            "limit",
            Shown::Text("0"),
            "limit",
            "Member must have value greater than or equal to 1",
        );
        let error = violations.into_result().err().and_then(|e| e.message);
        assert_eq!(
            error.as_deref(),
            Some(
                "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )
        );
    }
}
