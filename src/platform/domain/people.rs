//! Who does things: an account's id and its role. They sit below every
//! capability because the audit trail and the staff's views of the outbox
//! name their actor and check what that actor may see.

crate::id_type!(AccountId);

crate::text_enum! {
    /// What a person may do. Each role includes the ones before it.
    pub enum Role {
        Reader => "reader",
        Editor => "editor",
        Admin => "admin",
    }
}

impl Role {
    fn rank(self) -> u8 {
        match self {
            Self::Reader => 0,
            Self::Editor => 1,
            Self::Admin => 2,
        }
    }

    pub fn includes(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}
