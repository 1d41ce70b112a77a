//! Statement builders the migrations share. Index names are `ix_<table>_<name>`.

use sea_orm_migration::prelude::*;

pub(crate) fn index(
    table: &'static str,
    name: &str,
    cols: &[&'static str],
) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(format!("ix_{table}_{name}")).table(table);
    for c in cols {
        idx.col(*c);
    }
    idx.to_owned()
}

pub(crate) fn drop_index(table: &'static str, name: &str) -> IndexDropStatement {
    Index::drop()
        .name(format!("ix_{table}_{name}"))
        .table(table)
        .if_exists()
        .to_owned()
}
