//! Upgrading a store that holds data: migration 000014 makes `leads.api_key_id`
//! optional (on SQLite by rebuilding the table) and keeps every lead, every index and
//! the foreign keys; rolling it back removes only the leads that have no key.

use ciq_e2e::{Backend, TestDatabase, count};
use ciq_migrations::{Migrator, MigratorTrait};
use ciq_store::Db;
use sea_orm::EntityTrait;
use uuid::Uuid;

ciq_e2e::with_each_backend!(the_imports_migration_keeps_every_lead_and_index);

/// Stores a lead of `user` made with `key` (`None`: as an import makes it).
async fn insert_lead(db: &Db, user: Uuid, key: Option<Uuid>) -> Result<(), sea_orm::DbErr> {
    let now = ciq_entity::now();
    use sea_orm::ActiveValue::Set;
    // The columns a lead must have; the others keep their defaults.
    ciq_entity::Lead::insert(ciq_entity::lead::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user),
        api_key_id: Set(key),
        name: Set("Ada".into()),
        email: Set("ada@example.com".into()),
        source: Set("Web".into()),
        industry: Set("Retail".into()),
        status: Set(ciq_entity::lead::LeadStatus::New),
        created_at: Set(now),
        updated_at: Set(Some(now)),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

async fn the_imports_migration_keeps_every_lead_and_index(backend: Backend) {
    let Some(store) = TestDatabase::create(backend).await else {
        return;
    };
    let db = ciq_gateway::database::connect(&store.url).await.unwrap();
    // The store as the previous release left it: every migration before 000014.
    Migrator::up(db.connection(), Some(13)).await.unwrap();
    let user = ciq_admin::users::create_user(&db, "o@acme.test", None)
        .await
        .unwrap();
    // A key as that release wrote it: only the columns it had.
    use sea_orm::ActiveValue::Set;
    let key = ciq_entity::api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        lookup_id: Set("lookup13".into()),
        display_prefix: Set("ciq_lookup13".into()),
        secret_hash: Set(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        ),
        name: Set("API key".into()),
        rate_limit_per_minute: Set(None),
        created_at: Set(ciq_entity::now()),
        updated_at: Set(ciq_entity::now()),
        last_used_at: Set(None),
        expires_at: Set(None),
        revoked_at: Set(None),
        version: Set(0),
        scopes: Set("leads:create".into()),
        allowed_origins: Set(String::new()),
        ..Default::default()
    };
    let key = ciq_entity::api_key::Entity::insert(key)
        .exec(&db)
        .await
        .unwrap()
        .last_insert_id;
    insert_lead(&db, user.id, Some(key)).await.unwrap();
    assert!(
        insert_lead(&db, user.id, None).await.is_err(),
        "before 000014 a lead needs a key"
    );

    Migrator::up(db.connection(), None).await.unwrap();
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM leads").await,
        1,
        "the lead survives"
    );
    insert_lead(&db, user.id, None)
        .await
        .expect("an imported lead has no key");
    // Every index is back, and the foreign key to the keys still holds.
    let indexes = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads' \
                            AND name IN ('idx_leads_user_created_id', 'idx_leads_user_email', \
                            'idx_leads_user_external_id_set')"
        }
        Backend::Postgres | Backend::PgBouncer => {
            "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'leads' AND indexname IN \
                              ('idx_leads_user_created_id', 'idx_leads_user_email', \
                              'idx_leads_user_external_id_set')"
        }
    };
    assert_eq!(count(&db, indexes).await, 3);
    assert!(
        insert_lead(&db, user.id, Some(Uuid::now_v7()))
            .await
            .is_err(),
        "a key that does not exist is still refused"
    );

    // Rolling back to before 000014: the imported lead goes (it has no key to fall back
    // to), the other stays.
    let after_13 = u32::try_from(Migrator::migrations().len() - 13).unwrap();
    Migrator::down(db.connection(), Some(after_13))
        .await
        .unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM leads").await, 1);
    assert!(insert_lead(&db, user.id, None).await.is_err());
}
