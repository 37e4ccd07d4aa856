use sea_orm_migration::{prelude::*, schema::*};

/// Where reading an import's file goes on: the byte offset (the end of the `position`
/// rows done) and its line, and the file's cell separator, committed with each chunk. A turn
/// reads the file from there instead of parsing it again from the top (a 50 000-row
/// file was parsed some 650 000 rows' worth over its 25 turns). `NULL` for an import
/// that has not committed a chunk since this migration: its next turn reads from the
/// top and skips `position` rows, as before.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            big_integer_null(LeadImports::ResumeByte),
            big_integer_null(LeadImports::ResumeLine),
            small_integer_null(LeadImports::Delimiter),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(LeadImports::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            LeadImports::ResumeByte,
            LeadImports::ResumeLine,
            LeadImports::Delimiter,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(LeadImports::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum LeadImports {
    Table,
    ResumeByte,
    ResumeLine,
    Delimiter,
}
