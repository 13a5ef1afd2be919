// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "tessera",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .library(name: "TesseraOAuth", targets: ["TesseraOAuth"]),
        .library(name: "TesseraJOSE", targets: ["TesseraJOSE"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        // libxml2 + xmlsec1 (OpenSSL backend): the shim header fixes the layout defines SwiftPM drops.
        .systemLibrary(
            name: "CXMLSec", path: "Sources/CXMLSec", pkgConfig: "xmlsec1-openssl",
            providers: [.apt(["libxml2-dev", "libxmlsec1-dev"])]),

        // MARK: Domain
        .target(
            name: "TesseraCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraJOSE",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraPolicy",
            dependencies: ["TesseraCore", "TesseraJOSE"],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraClaims",
            dependencies: ["TesseraCore", "TesseraJOSE"],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraOIDC",
            dependencies: [
                "TesseraCore", "TesseraJOSE",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraSAML",
            dependencies: [
                "CXMLSec", "TesseraCore", "TesseraJOSE",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraSignIn",
            dependencies: [
                "TesseraCore", "TesseraJOSE", "TesseraStore", "TesseraOIDC", "TesseraClaims", "TesseraSAML",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraStore",
            dependencies: ["TesseraCore"],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraStoreSQLite",
            dependencies: [
                "TesseraStore", "TesseraCore", "CSQLite",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraStorePostgres",
            dependencies: [
                "TesseraStore", "TesseraCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraStoreConformance",
            dependencies: ["TesseraStore", "TesseraCore"],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraOAuth",
            dependencies: [
                "TesseraCore", "TesseraJOSE", "TesseraStore", "TesseraPolicy",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraHTTP",
            dependencies: [
                "TesseraCore", "TesseraOAuth", "TesseraStore", "TesseraJOSE", "TesseraSignIn", "TesseraOIDC", "TesseraSAML",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "tessera",
            dependencies: [
                "TesseraCore", "TesseraOAuth", "TesseraStore", "TesseraStoreSQLite", "TesseraStorePostgres", "TesseraHTTP", "TesseraJOSE",
                "TesseraPolicy", "TesseraOIDC", "TesseraSignIn", "TesseraSAML",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        // `make bench`: the ACS verifier's throughput on one signed response (scripts/bench_saml.sh).
        .executableTarget(
            name: "saml-bench",
            dependencies: ["TesseraSAML", "TesseraCore"],
            path: "Sources/SAMLBench",
            swiftSettings: swiftSettings),
        .target(
            name: "TesseraTesting",
            dependencies: [
                "TesseraCore", "TesseraJOSE", "TesseraOAuth", "TesseraStore", "TesseraStoreSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),

        // MARK: Tests
        .testTarget(
            name: "TesseraCoreTests", dependencies: ["TesseraCore", "TesseraTesting"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraPolicyTests", dependencies: ["TesseraPolicy", "TesseraCore", "TesseraJOSE"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraClaimsTests", dependencies: ["TesseraClaims", "TesseraCore", "TesseraJOSE"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraOIDCTests",
            dependencies: ["TesseraOIDC", "TesseraCore", "TesseraJOSE", "TesseraTesting", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraSAMLTests",
            dependencies: [
                "TesseraSAML", "CXMLSec", "TesseraCore", "TesseraJOSE",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraSignInTests", dependencies: ["TesseraSignIn", "TesseraCore", "TesseraJOSE"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraJOSETests",
            dependencies: [
                "TesseraJOSE", "TesseraTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraStoreSQLiteTests",
            dependencies: ["TesseraStoreSQLite", "TesseraStoreConformance", "TesseraStore", "TesseraCore"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraStorePostgresTests",
            dependencies: [
                "TesseraStorePostgres", "TesseraStoreConformance", "TesseraStore", "TesseraCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraOAuthTests",
            dependencies: [
                "TesseraOAuth", "TesseraTesting", "TesseraStoreSQLite", "TesseraStore",
                "TesseraCore", "TesseraJOSE",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TesseraHTTPTests",
            dependencies: [
                "TesseraHTTP", "TesseraOAuth", "TesseraTesting", "TesseraStoreSQLite", "TesseraStorePostgres",
                "TesseraStore", "TesseraCore", "TesseraJOSE",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings),
    ]
)
