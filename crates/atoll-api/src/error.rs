//! Errors as DynamoDB puts them on the wire: a `__type`, a message, a status.

use atoll_cluster::ClusterError;
use atoll_cluster::data::WriteRejection;
use serde_json::{Map, Value};

/// Every error kind Atoll answers with, named as DynamoDB names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Invalid request parameters.
    Validation,
    /// The body is not JSON, or a member has the wrong JSON type.
    Serialization,
    /// The `X-Amz-Target` names no operation (or one Atoll does not support yet).
    UnknownOperation,
    /// No `Authorization` header, or not a SigV4 one.
    MissingAuthenticationToken,
    /// The `Authorization` header lacks parts.
    IncompleteSignature,
    /// The signature is malformed or wrong.
    InvalidSignature,
    /// The access key (or security token) is not one Atoll knows.
    UnrecognizedClient,
    /// The table (or other resource) does not exist.
    ResourceNotFound,
    /// The resource exists or is busy.
    ResourceInUse,
    /// A condition on a write was false.
    ConditionalCheckFailed,
    /// A limit of the account or table was hit.
    LimitExceeded,
    /// An item collection of a table with local indexes reached its size limit.
    ItemCollectionSizeLimitExceeded,
    /// Not allowed.
    AccessDenied,
    /// A fault inside Atoll.
    InternalServerError,
    /// Atoll is temporarily unable to serve (e.g. a partition is electing a leader).
    ServiceUnavailable,
    /// A shard iterator older than 15 minutes (DynamoDB Streams).
    ExpiredIterator,
    /// Stream records asked for are past their retention (DynamoDB Streams).
    TrimmedDataAccess,
    /// A transaction did not commit; its reasons say why, action by action.
    TransactionCanceled,
    /// A single-item write met an item a transaction holds (retryable).
    TransactionConflict,
    /// A transaction with the same request token is still running.
    TransactionInProgress,
    /// A request token reused for another request.
    IdempotentParameterMismatch,
    /// A PartiQL INSERT of a key that exists.
    DuplicateItem,
}

impl ErrorKind {
    /// The `__type` DynamoDB uses for this error.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "com.amazon.coral.validate#ValidationException",
            ErrorKind::Serialization => "com.amazon.coral.service#SerializationException",
            ErrorKind::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            ErrorKind::MissingAuthenticationToken => {
                "com.amazon.coral.service#MissingAuthenticationTokenException"
            }
            ErrorKind::IncompleteSignature => {
                "com.amazon.coral.service#IncompleteSignatureException"
            }
            ErrorKind::InvalidSignature => "com.amazon.coral.service#InvalidSignatureException",
            ErrorKind::UnrecognizedClient => "com.amazon.coral.service#UnrecognizedClientException",
            ErrorKind::AccessDenied => "com.amazon.coral.service#AccessDeniedException",
            ErrorKind::ResourceNotFound => {
                "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
            }
            ErrorKind::ResourceInUse => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            ErrorKind::ConditionalCheckFailed => {
                "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
            }
            ErrorKind::LimitExceeded => "com.amazonaws.dynamodb.v20120810#LimitExceededException",
            ErrorKind::ItemCollectionSizeLimitExceeded => {
                "com.amazonaws.dynamodb.v20120810#ItemCollectionSizeLimitExceededException"
            }
            ErrorKind::InternalServerError => {
                "com.amazonaws.dynamodb.v20120810#InternalServerError"
            }
            ErrorKind::ServiceUnavailable => {
                "com.amazon.coral.availability#ServiceUnavailableException"
            }
            ErrorKind::ExpiredIterator => {
                "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException"
            }
            ErrorKind::TrimmedDataAccess => {
                "com.amazonaws.dynamodb.v20120810#TrimmedDataAccessException"
            }
            ErrorKind::TransactionCanceled => {
                "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
            }
            ErrorKind::TransactionConflict => {
                "com.amazonaws.dynamodb.v20120810#TransactionConflictException"
            }
            ErrorKind::TransactionInProgress => {
                "com.amazonaws.dynamodb.v20120810#TransactionInProgressException"
            }
            ErrorKind::IdempotentParameterMismatch => {
                "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
            }
            ErrorKind::DuplicateItem => "com.amazonaws.dynamodb.v20120810#DuplicateItemException",
        }
    }

    /// The error's name without its namespace (`ValidationException`).
    pub fn short_name(self) -> &'static str {
        let full = self.type_name();
        full.rsplit('#').next().unwrap_or(full)
    }

    /// The HTTP status DynamoDB answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InternalServerError => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// DynamoDB spells the message member `Message` for some coral errors.
    fn message_key(self) -> &'static str {
        match self {
            // The model spells these three `Message` too.
            ErrorKind::Serialization
            | ErrorKind::AccessDenied
            | ErrorKind::TransactionCanceled
            | ErrorKind::TransactionInProgress
            | ErrorKind::IdempotentParameterMismatch => "Message",
            _ => "message",
        }
    }
}

/// An error answer.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// What kind of error.
    pub kind: ErrorKind,
    /// The message; `None` where DynamoDB sends none.
    pub message: Option<String>,
    /// Extra top-level members (e.g. `Item` of a failed condition).
    pub extra: Option<Map<String, Value>>,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: Some(message.into()),
            extra: None,
        }
    }

    /// An error of `kind` with no message member at all.
    pub fn bare(kind: ErrorKind) -> Self {
        ApiError {
            kind,
            message: None,
            extra: None,
        }
    }

    /// A ValidationException.
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Validation, message)
    }

    /// A ValidationException prefixed as DynamoDB prefixes invalid parameter values.
    pub fn invalid_parameter(message: impl AsRef<str>) -> Self {
        ApiError::validation(format!(
            "One or more parameter values were invalid: {}",
            message.as_ref()
        ))
    }

    /// A SerializationException with a message.
    pub fn serialization(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Serialization, message)
    }

    /// ResourceNotFoundException as item operations word it.
    pub fn item_table_not_found() -> Self {
        ApiError::new(ErrorKind::ResourceNotFound, "Requested resource not found")
    }

    /// ResourceNotFoundException as table operations word it.
    pub fn table_not_found(name: &str) -> Self {
        ApiError::new(
            ErrorKind::ResourceNotFound,
            format!("Requested resource not found: Table: {name} not found"),
        )
    }

    /// ResourceNotFoundException for a tagged resource (the live service's
    /// text since about 2023; it spelled `ResourcArn` before).
    pub fn resource_not_found(arn: &str) -> Self {
        ApiError::new(
            ErrorKind::ResourceNotFound,
            format!("Requested resource not found: ResourceArn: {arn} not found"),
        )
    }

    /// ResourceInUseException for CreateTable of a name taken.
    pub fn table_exists(name: &str) -> Self {
        ApiError::new(
            ErrorKind::ResourceInUse,
            format!("Table already exists: {name}"),
        )
    }

    /// ResourceInUseException for a table still being created.
    pub fn being_created(name: &str) -> Self {
        ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Attempt to change a resource which is still in use: Table is being created: {name}"
            ),
        )
    }

    /// ResourceInUseException for a table still being deleted.
    pub fn being_deleted(name: &str) -> Self {
        ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Attempt to change a resource which is still in use: Table is being deleted: {name}"
            ),
        )
    }

    /// ResourceInUseException for a table still being updated.
    pub fn being_updated(name: &str) -> Self {
        ApiError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Attempt to change a resource which is still in use: Table: {name} is in the process of being updated."
            ),
        )
    }

    /// A tag request that would leave a resource with more than 50 tags.
    pub fn too_many_tags() -> Self {
        ApiError::validation("Number of Tags exceed the current limit for the provided ResourceArn")
    }

    /// A PutItem or batch put of an item over 400 KB.
    pub fn item_too_large() -> Self {
        ApiError::validation("Item size has exceeded the maximum allowed size")
    }

    /// A ConditionalCheckFailedException, with the item when it was asked for.
    pub fn conditional_check_failed(old: Option<Value>) -> Self {
        let mut error = ApiError::new(
            ErrorKind::ConditionalCheckFailed,
            "The conditional request failed",
        );
        error.extra = old.map(|item| {
            let mut extra = Map::new();
            extra.insert("Item".into(), item);
            extra
        });
        error
    }

    /// An InternalServerError for a fault inside Atoll (logged by the caller).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::InternalServerError, message)
    }

    /// The JSON body of this error.
    pub fn body(&self) -> Vec<u8> {
        let mut object = Map::new();
        object.insert("__type".into(), Value::String(self.kind.type_name().into()));
        if let Some(message) = &self.message {
            object.insert(
                self.kind.message_key().into(),
                Value::String(message.clone()),
            );
        }
        if let Some(extra) = &self.extra {
            for (key, value) in extra {
                object.insert(key.clone(), value.clone());
            }
        }
        serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            self.kind.type_name(),
            self.message.as_deref().unwrap_or("")
        )
    }
}

impl std::error::Error for ApiError {}

/// Result of a request handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// What a request was doing when a lower layer failed: DynamoDB words the
/// same failure differently for item, table and tag requests.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Doing<'a> {
    /// An item request (GetItem, PutItem, Query, BatchWriteItem, ...).
    Items,
    /// A table request (CreateTable, UpdateTable, DeleteTable) on `name`.
    Table(&'a str),
    /// A tag request on the resource `arn`.
    Tags(&'a str),
}

impl ApiError {
    /// The one mapping of the cluster's errors (local or from another node)
    /// to DynamoDB's wire errors.
    pub(crate) fn from_cluster(error: ClusterError, doing: Doing<'_>) -> ApiError {
        use ClusterError as E;
        match (error, doing) {
            // A partition disappears with its table: a request racing
            // DeleteTable sees the table as gone.
            (E::TableNotFound(_) | E::NoPartition { .. }, Doing::Items) => {
                ApiError::item_table_not_found()
            }
            (E::TableNotFound(_), Doing::Table(name)) => ApiError::table_not_found(name),
            (E::TableNotFound(_), Doing::Tags(arn)) => ApiError::resource_not_found(arn),
            (E::TableExists(name), _) => ApiError::table_exists(&name),
            (E::TableInUse(name), Doing::Items | Doing::Tags(_)) => ApiError::being_created(&name),
            (E::TableInUse(name), Doing::Table(_)) => ApiError::being_updated(&name),
            (E::DeletionProtected(_), _) => ApiError::validation(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
            ),
            (E::TooManyTags, _) => ApiError::too_many_tags(),
            (E::IndexExists(_), _) => {
                ApiError::validation("Attempting to create an index which already exists")
            }
            (E::IndexNotFound(table), _) => ApiError::new(
                ErrorKind::ResourceNotFound,
                format!("Requested resource not found: Index for table {table}"),
            ),
            (E::IndexBusy(_), _) => ApiError::new(
                ErrorKind::LimitExceeded,
                "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
            ),
            (E::KeyMismatch, _) => {
                ApiError::validation("The provided key element does not match the schema")
            }
            (E::Rejected(WriteRejection::Expression(message)), _) => ApiError::validation(message),
            (E::Rejected(WriteRejection::ItemTooLarge), _) => {
                ApiError::validation("Item size to update has exceeded the maximum allowed size")
            }
            (
                E::Rejected(WriteRejection::IndexKeyType {
                    index,
                    attribute,
                    expected,
                    actual,
                }),
                _,
            ) => ApiError::invalid_parameter(format!(
                "Type mismatch for Index Key {attribute} Expected: {expected} Actual: {actual} IndexName: {index}"
            )),
            (E::Rejected(WriteRejection::IndexKeyEmpty { binary }), _) => {
                crate::ops::empty_index_key_error(binary)
            }
            (E::Rejected(WriteRejection::ItemCollectionTooLarge), _) => ApiError::new(
                ErrorKind::ItemCollectionSizeLimitExceeded,
                "Collection size exceeded.",
            ),
            (E::TransactionConflict, _) => ApiError::new(
                ErrorKind::TransactionConflict,
                "Transaction is ongoing for the item",
            ),
            (E::TransactionInProgress, _) => ApiError::new(
                ErrorKind::TransactionInProgress,
                "Transaction from previous request is still in progress",
            ),
            (E::IdempotentMismatch, _) => ApiError::new(
                ErrorKind::IdempotentParameterMismatch,
                "DynamoDB rejected the request because you retried a request with a different payload but with an idempotent token that was already used.",
            ),
            (e, _) if e.is_retryable() => {
                ApiError::new(ErrorKind::ServiceUnavailable, e.to_string())
            }
            (e, _) => ApiError::internal(e.to_string()),
        }
    }
}

/// Item requests are the common case: `?` on a cluster call maps as one.
impl From<ClusterError> for ApiError {
    fn from(error: ClusterError) -> ApiError {
        ApiError::from_cluster(error, Doing::Items)
    }
}
