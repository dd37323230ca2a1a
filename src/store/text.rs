//! Every enum the store keeps as TEXT (`domain::text_enum!`), read straight
//! from and bound to its column: `Type` is TEXT on both stores and `Decode` parses the text,
//! so an unknown value is a decode error that names it ("error occurred
//! while decoding column kind: unknown job kind \"defragment\""), never a
//! panic. Queries bind `as_str()`.
//!
//! (`#[sqlx(try_from = "String")]` would do the decoding too, but sqlx 0.8
//! loses the error's text on that path: "unprintable error".)

use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use super::alerts::{AlertEvent, AlertState, DeliveryState, RuleKey};
use super::migrations::{RequestAction, RequestState};
use crate::domain::{BackupState, JobKind, JobState, RestoreState};

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

        impl<'q, DB: Database> Encode<'q, DB> for $t
        where
            &'q str: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, BoxDynError> {
                <&'q str as Encode<'q, DB>>::encode_by_ref(&self.as_str(), buf)
            }
        }
    )+};
}

text_column!(
    JobState,
    JobKind,
    BackupState,
    AlertState,
    RuleKey,
    AlertEvent,
    DeliveryState,
    RequestState,
    RequestAction,
    RestoreState,
);
