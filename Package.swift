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
            ]
        ),
        .executableTarget(
            name: "herald",
            dependencies: ["HeraldCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .target(name: "SwiftFixturePlugin", dependencies: ["CHeraldPlugin"]),
        // Fixture builders and mock-server launchers shared by the test targets.
        .target(name: "HeraldTestSupport", dependencies: ["HeraldPluginHost", "HeraldHTTP"], path: "Tests/HeraldTestSupport"),
        .testTarget(name: "HeraldPluginHostTests", dependencies: ["HeraldPluginHost", "CHeraldPlugin", "HeraldTestSupport"]),
        .testTarget(name: "HeraldHTTPTests", dependencies: ["HeraldHTTP", "HeraldTestSupport"]),
        .testTarget(name: "HeraldCoreTests", dependencies: ["HeraldCore", "HeraldTestSupport"]),
    ]
)
