// Test-only: builds nfsdcld and nfsdcltrack databases of each schema version
// with the layouts nfs-utils gives them (see nfsdcld_import.h), and proves a
// file unchanged. Used by nfsdcld_import_test.cc and the scenario tests.
#ifndef DAEMON_MIGRATE_TEST_SOURCES_H_
#define DAEMON_MIGRATE_TEST_SOURCES_H_

#include <dirent.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <set>
#include <string>

namespace nfsdh::migrate::testing {

inline void SqlExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO(sql << ": " << (err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// Inserts one row into `table`; std::nullopt binds NULL. `cols` names the
// columns, e.g. "id, princhash".
inline void InsertRow(const std::string& path, const std::string& table,
                      const std::string& cols,
                      const std::optional<std::string>& a,
                      const std::optional<std::string>& b = std::nullopt) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  int n = cols.find(',') != std::string::npos ? 2 : 1;
  std::string sql = "INSERT INTO \"" + table + "\" (" + cols + ") VALUES (?";
  for (int i = 1; i < n; ++i) sql += ", ?";
  sql += ")";
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  auto blob = [&](int idx, const std::optional<std::string>& v) {
    if (v)
      sqlite3_bind_blob(st, idx, v->data(), static_cast<int>(v->size()),
                        SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(st, idx);
  };
  blob(1, a);
  if (n == 2) blob(2, b);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_DONE);
}

inline std::string RecTable(uint64_t epoch) {
  char name[32];
  snprintf(name, sizeof name, "rec-%016" PRIx64, epoch);
  return name;
}

// nfsdcld schema 3 or 4 (4: rec tables have princhash): grace (current,
// recovery), tables for both epochs, parameters version and first_time
// (std::nullopt: no first_time row).
inline void MakeNfsdcld(const std::string& path, int version, int64_t current,
                        int64_t recovery,
                        std::optional<std::string> first_time = "0") {
  std::string cols = version >= 4 ? "(id BLOB PRIMARY KEY, princhash BLOB)"
                                  : "(id BLOB PRIMARY KEY)";
  std::string sql =
      "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);"
      "CREATE TABLE grace (current INTEGER , recovery INTEGER);"
      "INSERT INTO grace VALUES (" +
      std::to_string(current) + ", " + std::to_string(recovery) +
      ");"
      "CREATE TABLE \"" +
      RecTable(current) + "\" " + cols +
      ";"
      "INSERT INTO parameters VALUES ('version', '" +
      std::to_string(version) + "');";
  if (recovery != 0)
    sql += "CREATE TABLE \"" + RecTable(recovery) + "\" " + cols + ";";
  if (first_time)
    sql +=
        "INSERT INTO parameters VALUES ('first_time', '" + *first_time + "');";
  SqlExec(path, sql);
}

inline void AddRec(const std::string& path, int64_t epoch,
                   const std::optional<std::string>& id,
                   const std::optional<std::string>& hash = std::nullopt) {
  if (hash)
    InsertRow(path, RecTable(epoch), "id, princhash", id, hash);
  else
    InsertRow(path, RecTable(epoch), "id", id);
}

// nfsdcld schema 1 (its 2012 layout): clients (id, time).
inline void MakeNfsdcldV1(const std::string& path) {
  SqlExec(path,
          "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);"
          "CREATE TABLE clients (id BLOB PRIMARY KEY, time INTEGER);"
          "INSERT INTO parameters VALUES ('version', '1');");
}

// nfsdcltrack (schema 2): clients (id, time, has_session).
inline void MakeNfsdcltrack(const std::string& path) {
  SqlExec(path,
          "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);"
          "CREATE TABLE clients (id BLOB PRIMARY KEY, time INTEGER, "
          "has_session INTEGER);"
          "INSERT INTO parameters VALUES ('version', '2');");
}

inline void AddCltrack(const std::string& path, const std::string& id,
                       std::optional<int64_t> time,
                       std::optional<int64_t> has_session) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO clients VALUES (?, ?, ?)", -1,
                             &st, nullptr) == SQLITE_OK);
  sqlite3_bind_blob(st, 1, id.data(), static_cast<int>(id.size()),
                    SQLITE_TRANSIENT);
  if (time)
    sqlite3_bind_int64(st, 2, *time);
  else
    sqlite3_bind_null(st, 2);
  if (has_session)
    sqlite3_bind_int64(st, 3, *has_session);
  else
    sqlite3_bind_null(st, 3);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_DONE);
}

// The SHA-256 of a file, by coreutils' sha256sum.
inline std::string Sha256(const std::string& path) {
  FILE* p = popen(("sha256sum '" + path + "'").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[65] = {0};
  size_t n = fread(buf, 1, 64, p);
  pclose(p);
  REQUIRE(n == 64);
  return buf;
}

// The names in a directory.
inline std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (struct dirent* e = readdir(d)) out.insert(e->d_name);
  closedir(d);
  return out;
}

}  // namespace nfsdh::migrate::testing

#endif  // DAEMON_MIGRATE_TEST_SOURCES_H_
