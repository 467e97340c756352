//! Table settings in CreateTable and UpdateTable requests: their input shapes,
//! and DynamoDB's checks of throughput, billing mode, table class, streams and
//! encryption.

use atoll_model::table::{BillingMode, TableClass};

use crate::constraints::{Shown, Violations, enum_constraint};
use crate::error::{ApiError, ApiResult};
use crate::input::{self, Object};
use crate::shape::Shape;
use crate::shape::common::{BOOLEAN, LONG, STRING, STRING_LIST};

pub(crate) static KEY_SCHEMA_ELEMENT: Shape = Shape::Struct(
    "KeySchemaElement",
    &[("AttributeName", &STRING), ("KeyType", &STRING)],
);
pub(crate) static KEY_SCHEMA: Shape = Shape::List(&KEY_SCHEMA_ELEMENT);
pub(crate) static ATTRIBUTE_DEFINITION: Shape = Shape::Struct(
    "AttributeDefinition",
    &[("AttributeName", &STRING), ("AttributeType", &STRING)],
);
pub(crate) static ATTRIBUTE_DEFINITIONS: Shape = Shape::List(&ATTRIBUTE_DEFINITION);
pub(crate) static PROVISIONED_THROUGHPUT: Shape = Shape::Struct(
    "ProvisionedThroughput",
    &[("ReadCapacityUnits", &LONG), ("WriteCapacityUnits", &LONG)],
);
pub(crate) static ON_DEMAND_THROUGHPUT: Shape = Shape::Struct(
    "OnDemandThroughput",
    &[
        ("MaxReadRequestUnits", &LONG),
        ("MaxWriteRequestUnits", &LONG),
    ],
);
pub(crate) static WARM_THROUGHPUT: Shape = Shape::Struct(
    "WarmThroughput",
    &[
        ("ReadUnitsPerSecond", &LONG),
        ("WriteUnitsPerSecond", &LONG),
    ],
);
pub(crate) static PROJECTION: Shape = Shape::Struct(
    "Projection",
    &[
        ("ProjectionType", &STRING),
        ("NonKeyAttributes", &STRING_LIST),
    ],
);
pub(crate) static LOCAL_INDEX: Shape = Shape::Struct(
    "LocalSecondaryIndex",
    &[
        ("IndexName", &STRING),
        ("KeySchema", &KEY_SCHEMA),
        ("Projection", &PROJECTION),
    ],
);
pub(crate) static GLOBAL_INDEX: Shape = Shape::Struct(
    "GlobalSecondaryIndex",
    &[
        ("IndexName", &STRING),
        ("KeySchema", &KEY_SCHEMA),
        ("Projection", &PROJECTION),
        ("ProvisionedThroughput", &PROVISIONED_THROUGHPUT),
        ("OnDemandThroughput", &ON_DEMAND_THROUGHPUT),
        ("WarmThroughput", &WARM_THROUGHPUT),
    ],
);
pub(crate) static LOCAL_INDEXES: Shape = Shape::List(&LOCAL_INDEX);
pub(crate) static GLOBAL_INDEXES: Shape = Shape::List(&GLOBAL_INDEX);
pub(crate) static STREAM_SPECIFICATION: Shape = Shape::Struct(
    "StreamSpecification",
    &[("StreamEnabled", &BOOLEAN), ("StreamViewType", &STRING)],
);
pub(crate) static SSE_SPECIFICATION: Shape = Shape::Struct(
    "SSESpecification",
    &[
        ("Enabled", &BOOLEAN),
        ("SSEType", &STRING),
        ("KMSMasterKeyId", &STRING),
    ],
);
pub(crate) static TAG: Shape = Shape::Struct("Tag", &[("Key", &STRING), ("Value", &STRING)]);
pub(crate) static TAGS: Shape = Shape::List(&TAG);
pub(crate) static GSI_UPDATES: Shape = Shape::List(&GSI_UPDATE);
pub(crate) static GSI_UPDATE: Shape = Shape::Struct(
    "GlobalSecondaryIndexUpdate",
    &[
        ("Update", &GSI_UPDATE_ACTION),
        ("Create", &GLOBAL_INDEX),
        ("Delete", &GSI_DELETE_ACTION),
    ],
);
pub(crate) static GSI_UPDATE_ACTION: Shape = Shape::Struct(
    "UpdateGlobalSecondaryIndexAction",
    &[
        ("IndexName", &STRING),
        ("ProvisionedThroughput", &PROVISIONED_THROUGHPUT),
        ("OnDemandThroughput", &ON_DEMAND_THROUGHPUT),
        ("WarmThroughput", &WARM_THROUGHPUT),
    ],
);
pub(crate) static GSI_DELETE_ACTION: Shape = Shape::Struct(
    "DeleteGlobalSecondaryIndexAction",
    &[("IndexName", &STRING)],
);

pub(crate) const MAX_CAPACITY_UNITS: i64 = 1_000_000_000_000;
pub(crate) const STREAM_VIEW_TYPES: &[&str] =
    &["OLD_IMAGE", "KEYS_ONLY", "NEW_AND_OLD_IMAGES", "NEW_IMAGE"];
pub(crate) const BILLING_MODES: &[&str] = &["PROVISIONED", "PAY_PER_REQUEST"];
pub(crate) const MAX_LOCAL_INDEXES: usize = 5;

/// Provisioned throughput as sent.
pub(crate) struct ThroughputInput {
    pub(crate) read: Option<i64>,
    pub(crate) write: Option<i64>,
}

pub(crate) fn throughput_input(object: Option<&Object>) -> Option<ThroughputInput> {
    object.map(|pt| ThroughputInput {
        read: input::long(pt, "ReadCapacityUnits"),
        write: input::long(pt, "WriteCapacityUnits"),
    })
}

pub(crate) fn check_throughput_constraints(
    violations: &mut Violations,
    member: &str,
    path: &str,
    pt: &ThroughputInput,
) {
    for (field, value) in [
        ("writeCapacityUnits", pt.write),
        ("readCapacityUnits", pt.read),
    ] {
        let at = format!("{path}.{field}");
        match value {
            None => violations.not_null(member, &at),
            Some(v) if v < 1 => violations.add(
                member,
                Shown::Text(&v.to_string()),
                &at,
                "Member must have value greater than or equal to 1",
            ),
            Some(_) => {}
        }
    }
}

pub(crate) fn check_throughput_bounds(pt: &ThroughputInput) -> ApiResult<()> {
    for (name, value) in [
        ("ReadCapacityUnits", pt.read),
        ("WriteCapacityUnits", pt.write),
    ] {
        if let Some(v) = value
            && v > MAX_CAPACITY_UNITS
        {
            return Err(ApiError::validation(format!(
                "Given value {v} for {name} is out of bounds"
            )));
        }
    }
    Ok(())
}

pub(crate) fn parse_billing_mode(text: Option<&str>) -> BillingMode {
    match text {
        Some("PAY_PER_REQUEST") => BillingMode::PayPerRequest,
        _ => BillingMode::Provisioned,
    }
}

pub(crate) fn parse_table_class(text: Option<&str>) -> ApiResult<Option<TableClass>> {
    match text {
        None => Ok(None),
        Some(text) => TableClass::parse(text).map(Some).ok_or_else(|| {
            ApiError::validation(
                "Invalid table-class parameter provided. Please try again with a valid table-class value: [STANDARD, STANDARD_INFREQUENT_ACCESS].",
            )
        }),
    }
}

pub(crate) fn check_stream_view_type(
    violations: &mut Violations,
    member: &str,
    spec: Option<&Object>,
) {
    let Some(spec) = spec else { return };
    if !input::has(spec, "StreamEnabled") {
        violations.not_null(member, &format!("{member}.streamEnabled"));
    }
    if let Some(view) = input::string(spec, "StreamViewType")
        && !STREAM_VIEW_TYPES.contains(&view)
    {
        violations.add(
            member,
            Shown::Text(view),
            &format!("{member}.streamViewType"),
            &enum_constraint(STREAM_VIEW_TYPES),
        );
    }
}

pub(crate) fn check_sse_constraints(violations: &mut Violations, spec: Option<&Object>) {
    let Some(spec) = spec else { return };
    if let Some(sse_type) = input::string(spec, "SSEType")
        && sse_type != "AES256"
        && sse_type != "KMS"
    {
        violations.add(
            "sSESpecification",
            Shown::Text(sse_type),
            "sSESpecification.sSEType",
            &enum_constraint(&["AES256", "KMS"]),
        );
    }
    if input::string(spec, "KMSMasterKeyId") == Some("") {
        violations.add(
            "sSESpecification",
            Shown::Text(""),
            "sSESpecification.kMSMasterKeyId",
            "Member must have length greater than or equal to 1",
        );
    }
}

pub(crate) fn check_sse_semantics(spec: Option<&Object>) -> ApiResult<()> {
    let Some(spec) = spec else { return Ok(()) };
    let enabled = input::boolean(spec, "Enabled");
    let sse_type = input::string(spec, "SSEType");
    let key = input::string(spec, "KMSMasterKeyId");
    if enabled == Some(false) {
        if sse_type.is_some() {
            return Err(ApiError::invalid_parameter(
                "SSEType can not be specified if Enabled is false",
            ));
        }
        if key.is_some() {
            return Err(ApiError::invalid_parameter(
                "KMSMasterKeyId can not be specified if Enabled is false",
            ));
        }
    }
    if sse_type == Some("AES256") {
        return Err(ApiError::invalid_parameter(
            "SSEType AES256 is not supported",
        ));
    }
    if key.is_some() && sse_type != Some("KMS") {
        return Err(ApiError::invalid_parameter(
            "SSEType KMS is required if KMSMasterKeyId is specified",
        ));
    }
    if enabled == Some(true) {
        return Err(super::unsupported_parameter(
            "Server-side encryption with a KMS key (SSESpecification.Enabled)",
        ));
    }
    Ok(())
}

/// Model constraints of the settings CreateTable and UpdateTable share.
pub(crate) fn check_settings_constraints(
    violations: &mut Violations,
    billing_mode: Option<&str>,
    throughput: Option<&ThroughputInput>,
    stream: Option<&Object>,
    sse: Option<&Object>,
) {
    if let Some(mode) = billing_mode
        && !BILLING_MODES.contains(&mode)
    {
        violations.add(
            "billingMode",
            Shown::Text(mode),
            "billingMode",
            &enum_constraint(BILLING_MODES),
        );
    }
    if let Some(pt) = throughput {
        check_throughput_constraints(
            violations,
            "provisionedThroughput",
            "provisionedThroughput",
            pt,
        );
    }
    check_stream_view_type(violations, "streamSpecification", stream);
    check_sse_constraints(violations, sse);
}
