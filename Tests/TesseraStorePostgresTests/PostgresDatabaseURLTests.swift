import XCTest

@testable import TesseraStorePostgres

/// The URL grammar of `--database postgres://…`: strict, and never echoing the password.
final class PostgresDatabaseURLTests: XCTestCase {
    func testFullURL() throws {
        let url = try PostgresDatabaseURL(parsing: "postgres://tessera:s%40cret@db.example.com:6543/broker?pool=16&sslmode=verify-full")
        XCTAssertEqual(url.endpoint, .tcp(host: "db.example.com", port: 6543))
        XCTAssertEqual(url.username, "tessera")
        XCTAssertEqual(url.password, "s@cret")
        XCTAssertEqual(url.database, "broker")
        XCTAssertEqual(url.poolSize, 16)
        XCTAssertEqual(url.tls, .verifyFull)
    }

    func testDefaults() throws {
        let url = try PostgresDatabaseURL(parsing: "postgresql://tessera@127.0.0.1")
        XCTAssertEqual(url.endpoint, .tcp(host: "127.0.0.1", port: 5432))
        XCTAssertNil(url.password)
        XCTAssertEqual(url.database, "tessera", "the database defaults to the user name, as in libpq")
        XCTAssertEqual(url.poolSize, PostgresDatabaseURL.defaultPoolSize)
        XCTAssertEqual(url.tls, .disable)
        let configured = try PostgresDatabaseURL(parsing: "postgres://tessera@127.0.0.1/db", defaultPoolSize: 3)
        XCTAssertEqual(configured.poolSize, 3)
        let overridden = try PostgresDatabaseURL(parsing: "postgres://tessera@127.0.0.1/db?pool=5", defaultPoolSize: 3)
        XCTAssertEqual(overridden.poolSize, 5, "the URL's pool item wins over the default")
    }

    func testIPv6AndUnixSocket() throws {
        let ipv6 = try PostgresDatabaseURL(parsing: "postgres://tessera@[::1]:5433/db")
        XCTAssertEqual(ipv6.endpoint, .tcp(host: "::1", port: 5433))
        let socket = try PostgresDatabaseURL(parsing: "postgres://tessera@/db?host=/run/postgresql")
        XCTAssertEqual(socket.endpoint, .unixSocket(path: "/run/postgresql/.s.PGSQL.5432"))
    }

    func testDescriptionHidesThePassword() throws {
        let url = try PostgresDatabaseURL(parsing: "postgres://tessera:hunter2-secret@db.example.com/broker")
        XCTAssertEqual(url.description, "postgres://tessera:***@db.example.com:5432/broker?pool=8")
        XCTAssertFalse("\(url)".contains("hunter2"))
        XCTAssertFalse(String(reflecting: url).contains("hunter2"))
        var dumped = ""
        dump(url, to: &dumped)
        XCTAssertFalse(dumped.contains("hunter2"), dumped)
    }

    func testMalformedURLsAreRefusedWithoutRepeatingThem() {
        let cases: [(String, String)] = [
            ("sqlite:./x.db", "expected postgres://"),
            ("postgres://db.example.com/broker", "no user"),
            ("postgres://tessera:pw-secret@/broker", "no host"),
            ("postgres://tessera:pw-secret@db/broker?pool=0", "pool must be"),
            ("postgres://tessera:pw-secret@db/broker?pool=many", "pool must be"),
            ("postgres://tessera:pw-secret@db/broker?pool=1&pool=2", "repeated"),
            ("postgres://tessera:pw-secret@db/broker?sslmode=require", "sslmode"),
            ("postgres://tessera:pw-secret@db/broker?options=-c%20x", "unknown query item"),
            ("postgres://tessera:pw-secret@db/broker?host=relative", "absolute path"),
            ("postgres://tessera:pw-secret@db/broker?host=/tmp", "not both"),
            ("postgres://tessera:pw-secret@db/a/b", "database name"),
            ("postgres://tessera:pw-secret@db/broker#x", "fragment"),
        ]
        for (text, expected) in cases {
            do {
                let url = try PostgresDatabaseURL(parsing: text)
                XCTFail("\(text) was accepted as \(url)")
            } catch {
                XCTAssertTrue(error.description.contains(expected), "\(text): \(error)")
                XCTAssertFalse(error.description.contains("pw-secret"), "\(text): \(error)")
            }
        }
    }
}
