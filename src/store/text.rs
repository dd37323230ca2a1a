//! The enums of `domain` that the store keeps as TEXT read straight from
//! their column: `Type` is TEXT on both stores and `Decode` parses the text,
//! so an unknown value is a decode error that names it ("error occurred
//! while decoding column kind: unknown job kind \"defragment\""), never a
//! panic. Queries bind `as_str()`.
//!
//! (`#[sqlx(try_from = "String")]` would do the decoding too, but sqlx 0.8
//! loses the error's text on that path: "unprintable error".)

use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

use crate::domain::{BackupState, JobKind, JobState};

macro_rules! text_column {
    ($($t:ty),+ $(,)?) => {$(
        impl<DB: Database> Type<DB> for $t
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $t
        where
            String: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<String as Decode<'r, DB>>::decode(value)?.parse::<$t>()?)
            }
        }
    )+};
}

text_column!(JobState, JobKind, BackupState);
