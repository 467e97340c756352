//! Every operation of DynamoDB and DynamoDB Streams, implemented or not.

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// A DynamoDB or DynamoDB Streams operation, named as in `X-Amz-Target`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Operation {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
        }

        impl Operation {
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),*];

            /// The operation's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name),)*
                }
            }

            fn from_name(name: &str) -> Option<Operation> {
                match name {
                    $(stringify!($name) => Some(Operation::$name),)*
                    _ => None,
                }
            }
        }
    };
}

operations!(
    // DynamoDB (DynamoDB_20120810)
    BatchExecuteStatement,
    BatchGetItem,
    BatchWriteItem,
    CreateBackup,
    CreateGlobalTable,
    CreateTable,
    DeleteBackup,
    DeleteItem,
    DeleteResourcePolicy,
    DeleteTable,
    DescribeBackup,
    DescribeContinuousBackups,
    DescribeContributorInsights,
    DescribeEndpoints,
    DescribeExport,
    DescribeGlobalTable,
    DescribeGlobalTableSettings,
    DescribeImport,
    DescribeKinesisStreamingDestination,
    DescribeLimits,
    DescribeTable,
    DescribeTableReplicaAutoScaling,
    DescribeTimeToLive,
    DisableKinesisStreamingDestination,
    EnableKinesisStreamingDestination,
    ExecuteStatement,
    ExecuteTransaction,
    ExportTableToPointInTime,
    GetItem,
    GetResourcePolicy,
    ImportTable,
    ListBackups,
    ListContributorInsights,
    ListExports,
    ListGlobalTables,
    ListImports,
    ListTables,
    ListTagsOfResource,
    PutItem,
    PutResourcePolicy,
    Query,
    RestoreTableFromBackup,
    RestoreTableToPointInTime,
    Scan,
    TagResource,
    TransactGetItems,
    TransactWriteItems,
    UntagResource,
    UpdateContinuousBackups,
    UpdateContributorInsights,
    UpdateGlobalTable,
    UpdateGlobalTableSettings,
    UpdateItem,
    UpdateKinesisStreamingDestination,
    UpdateTable,
    UpdateTableReplicaAutoScaling,
    UpdateTimeToLive,
    // DynamoDB Streams (DynamoDBStreams_20120810)
    DescribeStream,
    GetRecords,
    GetShardIterator,
    ListStreams,
);

const DYNAMODB_PREFIX: &str = "DynamoDB_20120810";
const STREAMS_PREFIX: &str = "DynamoDBStreams_20120810";

impl Operation {
    /// Whether the operation belongs to DynamoDB Streams.
    pub fn is_streams(self) -> bool {
        matches!(
            self,
            Operation::DescribeStream
                | Operation::GetRecords
                | Operation::GetShardIterator
                | Operation::ListStreams
        )
    }

    /// Resolves an `X-Amz-Target` header value.
    pub fn from_target(target: &str) -> Option<Operation> {
        let (prefix, name) = target.split_once('.')?;
        let operation = Operation::from_name(name)?;
        let prefix_ok = if operation.is_streams() {
            prefix == STREAMS_PREFIX
        } else {
            prefix == DYNAMODB_PREFIX
        };
        prefix_ok.then_some(operation)
    }
}

#[cfg(test)]
mod tests {
    use super::Operation;

    #[test]
    fn targets_resolve_only_with_their_service_prefix() {
        assert_eq!(
            Operation::from_target("DynamoDB_20120810.PutItem"),
            Some(Operation::PutItem)
        );
        assert_eq!(
            Operation::from_target("DynamoDBStreams_20120810.GetRecords"),
            Some(Operation::GetRecords)
        );
        assert_eq!(Operation::from_target("DynamoDB_20120810.GetRecords"), None);
        assert_eq!(Operation::from_target("DynamoDB_20120810.ListTable"), None);
        assert_eq!(Operation::from_target("PutItem"), None);
        for op in Operation::ALL {
            let prefix = if op.is_streams() {
                "DynamoDBStreams_20120810"
            } else {
                "DynamoDB_20120810"
            };
            assert_eq!(
                Operation::from_target(&format!("{prefix}.{}", op.name())),
                Some(*op)
            );
        }
    }
}
