//! Practices, users and their phone numbers.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::account::{NewUser, PhoneNumber, Practice, PracticeId, Role, User, UserId};

/// Adds a practice and returns its ID; fails on a duplicate name.
pub fn insert_practice(conn: &Connection, name: &str, now: &str) -> rusqlite::Result<PracticeId> {
    conn.prepare_cached("INSERT INTO practices (name, created_at) VALUES (?1, ?2)")?
        .execute(params![name, now])?;
    Ok(conn.last_insert_rowid())
}

/// The practice with this ID.
pub fn practice_by_id(conn: &Connection, id: PracticeId) -> rusqlite::Result<Option<Practice>> {
    conn.prepare_cached("SELECT practice_id, name FROM practices WHERE practice_id = ?1")?
        .query_row([id], practice_from_row)
        .optional()
}

/// The practice with this name, compared without regard to case.
pub fn practice_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<Practice>> {
    conn.prepare_cached("SELECT practice_id, name FROM practices WHERE name = ?1")?
        .query_row([name], practice_from_row)
        .optional()
}

/// Every practice, by ID.
pub fn practices(conn: &Connection) -> rusqlite::Result<Vec<Practice>> {
    let mut stmt =
        conn.prepare_cached("SELECT practice_id, name FROM practices ORDER BY practice_id")?;
    stmt.query_map([], practice_from_row)?.collect()
}

fn practice_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Practice> {
    Ok(Practice {
        practice_id: row.get(0)?,
        name: row.get(1)?,
    })
}

/// Whether `user_id` is taken.
pub fn user_exists(conn: &Connection, user_id: UserId) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE user_id = ?1)")?
        .query_row([user_id.to_stored()], |r| r.get(0))
}

/// Adds a user with the ID already chosen, and their phone numbers.
pub fn insert_user(
    conn: &Connection,
    user_id: UserId,
    practice_id: PracticeId,
    user: &NewUser,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO users (user_id, practice_id, role, name, email, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        user_id.to_stored(),
        practice_id,
        user.role.as_str(),
        user.name,
        user.email,
        now
    ])?;
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO user_phones (user_id, phone) VALUES (?1, ?2)")?;
    for phone in &user.phones {
        stmt.execute(params![user_id.to_stored(), phone.as_str()])?;
    }
    Ok(())
}

const USER_COLUMNS: &str = "SELECT u.user_id, u.role, u.practice_id, p.name, u.name, u.email,
            (SELECT group_concat(phone, ' ') FROM
                (SELECT phone FROM user_phones f WHERE f.user_id = u.user_id ORDER BY phone))
     FROM users u JOIN practices p ON p.practice_id = u.practice_id";

/// One user, with practice name and phones.
pub fn user(conn: &Connection, user_id: UserId) -> rusqlite::Result<Option<User>> {
    let sql = format!("{USER_COLUMNS} WHERE u.user_id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([user_id.to_stored()], user_from_row)
        .optional()
}

/// Every user, by practice then name.
pub fn users(conn: &Connection) -> rusqlite::Result<Vec<User>> {
    let sql = format!("{USER_COLUMNS} ORDER BY p.practice_id, u.name, u.user_id");
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map([], user_from_row)?.collect()
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let bad = |i, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("stored {what} is not valid").into(),
        )
    };
    let user_id = UserId::from_stored(row.get(0)?).ok_or_else(|| bad(0, "user ID"))?;
    let role: Role = row
        .get::<_, String>(1)?
        .parse()
        .map_err(|_| bad(1, "role"))?;
    let phones: Option<String> = row.get(6)?;
    let phones = phones
        .unwrap_or_default()
        .split_whitespace()
        .map(PhoneNumber::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad(6, "phone number"))?;
    Ok(User {
        user_id,
        role,
        practice_id: row.get(2)?,
        practice: row.get(3)?,
        name: row.get(4)?,
        email: row.get(5)?,
        phones,
    })
}

/// The providers of a practice, by user ID.
pub fn providers_of(conn: &Connection, practice_id: PracticeId) -> rusqlite::Result<Vec<UserId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM users WHERE practice_id = ?1 AND role = 'provider' ORDER BY user_id",
    )?;
    stmt.query_map([practice_id], |r| {
        let id: i64 = r.get(0)?;
        UserId::from_stored(id).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Integer,
                "stored user ID is not valid".into(),
            )
        })
    })?
    .collect()
}
