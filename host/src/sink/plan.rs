//! A pipeline's table plan: which column takes which field, checked against
//! the table's schema in the database before anything is consumed.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::{FieldType, PipelineConfig};
use crate::event::convert::{Decoder, SqlType};
use crate::store::sql::{ident, load_data};

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnSource {
    /// The event field in decoder slot `n`.
    Field(usize),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    IngestedAt,
    /// The chain's version label (`@chain`).
    Chain,
}

/// A target column and how to fill it.
#[derive(Debug, Clone)]
pub struct PlannedColumn {
    pub name: String,
    /// The field or `@property` it is mapped from.
    pub from: String,
    pub source: ColumnSource,
    pub ty: SqlType,
    /// The column's declared type, for messages.
    pub column_type: String,
    pub nullable: bool,
}

/// How a pipeline's events become rows of its table; checked against the table.
#[derive(Debug)]
pub struct TablePlan {
    pub table: String,
    pub columns: Vec<PlannedColumn>,
    pub decoder: Decoder,
    load_sql: String,
    insert_head: String,
}

/// Why a pipeline's table cannot take its events.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("table `{0}` does not exist in the database")]
    NoTable(String),
    #[error("table `{table}` has no column `{column}` (mapped from `{from}`)")]
    MissingColumn {
        table: String,
        column: String,
        from: String,
    },
    #[error("column `{table}.{column}` has type `{ty}`, which weir cannot write")]
    Unsupported {
        table: String,
        column: String,
        ty: String,
    },
    #[error("column `{table}.{column}` ({ty}) cannot hold field `{field}`, declared {declared:?}")]
    Incompatible {
        table: String,
        column: String,
        ty: String,
        field: String,
        declared: FieldType,
    },
    #[error(
        "column `{table}.{column}` is NOT NULL without a default, and no field is mapped to it"
    )]
    UnmappedRequired { table: String, column: String },
    #[error(
        "column `{table}.{column}` is NOT NULL, but plugin `{plugin}` may write `{field}` as null"
    )]
    MayBeNull {
        table: String,
        column: String,
        field: String,
        plugin: String,
    },
    #[error("reading the table's columns: {0}")]
    Db(#[from] mysql_async::Error),
}

/// `COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH,
/// NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, COLUMN_DEFAULT, EXTRA`.
pub(crate) type SchemaRow = (
    String,
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
    String,
);

impl TablePlan {
    /// Reads the table's columns and matches them with the pipeline's mapping.
    /// `fields` are the types the chain leaves its fields with ([`crate::chain::fields::chain_fields`]).
    pub async fn load(
        conn: &mut Conn,
        p: &PipelineConfig,
        fields_in: &crate::chain::fields::Fields,
    ) -> Result<TablePlan, PlanError> {
        let rows: Vec<SchemaRow> = conn
            .query(format!(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, \
                 NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, COLUMN_DEFAULT, EXTRA \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {}",
                crate::store::sql::str_literal(&p.table)
            ))
            .await?;
        TablePlan::from_schema(p, fields_in, rows)
    }

    /// Matches the pipeline's mapping with the table's columns as
    /// `information_schema.COLUMNS` describes them.
    pub(crate) fn from_schema(
        p: &PipelineConfig,
        fields_in: &crate::chain::fields::Fields,
        rows: Vec<SchemaRow>,
    ) -> Result<TablePlan, PlanError> {
        if rows.is_empty() {
            return Err(PlanError::NoTable(p.table.clone()));
        }
        let mut by_name: HashMap<String, SchemaRow> = rows
            .into_iter()
            .map(|r| (r.0.to_ascii_lowercase(), r))
            .collect();
        let mut fields: Vec<String> = Vec::new();
        let mut columns = Vec::new();
        for (column, from) in &p.columns {
            let Some(row) = by_name.remove(&column.to_ascii_lowercase()) else {
                return Err(PlanError::MissingColumn {
                    table: p.table.clone(),
                    column: column.clone(),
                    from: from.clone(),
                });
            };
            let (name, data_type, column_type, nullable, chars, prec, scale, dtp, _, _) = row;
            let ty = SqlType::from_schema(&data_type, &column_type, chars, prec, scale, dtp);
            if let SqlType::Unsupported(t) = &ty {
                return Err(PlanError::Unsupported {
                    table: p.table.clone(),
                    column: name,
                    ty: t.clone(),
                });
            }
            let source = match from.as_str() {
                "@topic" => ColumnSource::Topic,
                "@partition" => ColumnSource::Partition,
                "@offset" => ColumnSource::Offset,
                "@timestamp" => ColumnSource::Timestamp,
                "@key" => ColumnSource::Key,
                "@ingested_at" => ColumnSource::IngestedAt,
                "@chain" => ColumnSource::Chain,
                field => {
                    if let Some(info) = fields_in.get(field) {
                        if !compatible(info.ty, &ty) {
                            return Err(PlanError::Incompatible {
                                table: p.table.clone(),
                                column: name,
                                ty: column_type,
                                field: field.to_owned(),
                                declared: info.ty,
                            });
                        }
                        if let crate::chain::fields::Origin::Step(plugin) = &info.origin {
                            if info.nullable && nullable.eq_ignore_ascii_case("NO") {
                                return Err(PlanError::MayBeNull {
                                    table: p.table.clone(),
                                    column: name,
                                    field: field.to_owned(),
                                    plugin: plugin.clone(),
                                });
                            }
                        }
                    }
                    let slot = match fields.iter().position(|f| f == field) {
                        Some(i) => i,
                        None => {
                            fields.push(field.to_owned());
                            fields.len() - 1
                        }
                    };
                    ColumnSource::Field(slot)
                }
            };
            columns.push(PlannedColumn {
                name,
                from: from.clone(),
                source,
                ty,
                column_type: column_type.to_ascii_lowercase(),
                nullable: nullable.eq_ignore_ascii_case("YES"),
            });
        }
        for (_, row) in by_name {
            let (name, _, _, nullable, _, _, _, _, default, extra) = row;
            let generated = extra.to_ascii_lowercase();
            if nullable.eq_ignore_ascii_case("NO")
                && default.is_none()
                && !generated.contains("auto_increment")
                && !generated.contains("generated")
            {
                return Err(PlanError::UnmappedRequired {
                    table: p.table.clone(),
                    column: name,
                });
            }
        }
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let load_sql = load_data(&p.table, &names, "weir-batch");
        let cols: Vec<String> = names.iter().map(|c| ident(c)).collect();
        let insert_head = format!(
            "INSERT INTO {} ({}) VALUES ",
            ident(&p.table),
            cols.join(", ")
        );
        Ok(TablePlan {
            table: p.table.clone(),
            columns,
            decoder: Decoder::new(fields),
            load_sql,
            insert_head,
        })
    }

    /// The `LOAD DATA` statement for this table.
    pub fn load_sql(&self) -> &str {
        &self.load_sql
    }

    /// `INSERT INTO t (cols) VALUES ` for this table.
    pub fn insert_head(&self) -> &str {
        &self.insert_head
    }
}

fn compatible(declared: FieldType, ty: &SqlType) -> bool {
    use SqlType as S;
    match declared {
        FieldType::Int => !matches!(ty, S::Unsupported(_)),
        FieldType::Float => matches!(
            ty,
            S::Float | S::Decimal { .. } | S::Text { .. } | S::Binary { .. } | S::Json
        ),
        FieldType::Text => matches!(
            ty,
            S::Text { .. } | S::Binary { .. } | S::Json | S::DateTime { .. } | S::Date
        ),
        FieldType::Boolean => matches!(ty, S::Int { .. } | S::Text { .. } | S::Json),
        FieldType::Json => matches!(ty, S::Text { .. } | S::Binary { .. } | S::Json),
    }
}
