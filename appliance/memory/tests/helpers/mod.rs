//! What the memory API tests share.

pub mod falkor;
