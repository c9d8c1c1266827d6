use airlog::db::MIGRATIONS;
use diesel::RunQueryDsl;
use diesel_migrations::MigrationHarness;

use crate::helpers::TestDb;

#[test]
fn every_migration_goes_up_down_and_up_again() {
    let db = TestDb::empty();
    let mut conn = db.conn();
    let all = conn.run_pending_migrations(MIGRATIONS).unwrap().len();
    assert!(all > 0);
    let reverted = conn.revert_all_migrations(MIGRATIONS).unwrap().len();
    assert_eq!(reverted, all);
    let left: i64 = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(left, 0, "down migrations leave tables behind");
    assert_eq!(conn.run_pending_migrations(MIGRATIONS).unwrap().len(), all);
    assert!(!conn.has_pending_migration(MIGRATIONS).unwrap());
}
