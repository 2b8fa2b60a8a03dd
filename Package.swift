// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "herald",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "herald", targets: ["herald"]),
        .library(name: "HeraldCore", targets: ["HeraldCore"]),
        .library(name: "HeraldPluginHost", targets: ["HeraldPluginHost"]),
        .library(name: "HeraldHTTP", targets: ["HeraldHTTP"]),
        // A channel plugin written in Swift: the loader's Swift fixture (see Tests/).
        .library(name: "HeraldSwiftFixture", type: .dynamic, targets: ["SwiftFixturePlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
    ],
    targets: [
        // The plugin ABI: a module over include/herald/plugin.h, plus compile-time layout checks.
        .target(name: "CHeraldPlugin", cSettings: [.headerSearchPath("../../include")]),
        .target(name: "CHostShims", linkerSettings: [.linkedLibrary("ffi")]),
        .target(name: "CCurlShim", linkerSettings: [.linkedLibrary("curl")]),
        .target(name: "HeraldHTTP", dependencies: ["CCurlShim"]),
        .target(
            name: "HeraldPluginHost",
            dependencies: [
                "CHeraldPlugin", "CHostShims",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "HeraldCore",
            dependencies: [
                "HeraldPluginHost", "HeraldHTTP", "Yams",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The embedded store: SQLite through GRDB, behind HeraldCore's IncidentStore protocol.
        .target(name: "HeraldStore", dependencies: ["HeraldCore", .product(name: "GRDB", package: "GRDB.swift")]),
        // The HTTP face: ingest, incidents API, provider callbacks, signed action pages, metrics.
        .target(
            name: "HeraldServer",
            dependencies: [
                "HeraldCore", "HeraldStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "HeraldCore", "HeraldStore", "HeraldServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "SwiftFixturePlugin", dependencies: ["CHeraldPlugin"]),
        // Fixture builders and mock-server launchers shared by the test targets.
        .target(name: "HeraldTestSupport", dependencies: ["HeraldPluginHost", "HeraldHTTP"], path: "Tests/HeraldTestSupport"),
        .testTarget(name: "HeraldPluginHostTests", dependencies: ["HeraldPluginHost", "CHeraldPlugin", "HeraldTestSupport"]),
        .testTarget(name: "HeraldHTTPTests", dependencies: ["HeraldHTTP", "HeraldTestSupport"]),
        .testTarget(name: "HeraldCoreTests", dependencies: ["HeraldCore", "HeraldTestSupport"]),
        .testTarget(name: "HeraldEngineTests", dependencies: ["HeraldCore", "HeraldStore", "HeraldTestSupport"]),
        .testTarget(name: "HeraldServerTests", dependencies: ["HeraldServer", "HeraldStore", "HeraldCore", "HeraldTestSupport",
                                                               .product(name: "HummingbirdTesting", package: "hummingbird")]),
    ]
)
