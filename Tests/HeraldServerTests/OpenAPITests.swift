import Foundation
import HeraldServer
import HeraldTestSupport
import Testing

@Suite("OpenAPI document")
struct OpenAPITests {
    static let documentPath = Fixtures.repositoryRoot + "/docs/openapi.yaml"

    /// "METHOD /path" for every operation under `paths:` (two-space paths, four-space methods).
    static func documentedOperations() throws -> Set<String> {
        let text = try String(contentsOfFile: documentPath, encoding: .utf8)
        var result: Set<String> = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:"; path = nil; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "delete", "patch", "head", "options"].contains(String(method)) {
                    result.insert("\(method.uppercased()) \(path)")
                }
            }
        }
        return result
    }

    /// The router's routes in OpenAPI's spelling: `{name}` stays, `**` becomes `{rest}`.
    static func routedOperations() throws -> Set<String> {
        let h = try Harness()
        return Set(buildRouter(h.context).routes.map { route in
            var path = route.path.description
            if !path.hasPrefix("/") { path = "/" + path }
            path = path.replacingOccurrences(of: "/**", with: "/{rest}")
            return "\(route.method.rawValue) \(path)"
        })
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() throws {
        let documented = try Self.documentedOperations()
        let routed = try Self.routedOperations()
        #expect(!routed.isEmpty)
        #expect(routed.subtracting(documented).sorted() == [], "routes missing from docs/openapi.yaml")
        #expect(documented.subtracting(routed).sorted() == [], "documented operations the router does not have")
    }

    @Test func theDocumentIsOpenAPI31() throws {
        let text = try String(contentsOfFile: Self.documentPath, encoding: .utf8)
        #expect(text.hasPrefix("openapi: 3.1.0\n"))
        // Every $ref points at a defined component.
        let refs = Set(text.matches(of: /'#\/components\/(\w+)\/(\w+)'/).map { "\($0.1)/\($0.2)" })
        for ref in refs {
            let parts = ref.split(separator: "/")
            #expect(text.contains("\n  \(parts[0]):\n") && text.contains("\n    \(parts[1]):\n"), "\(ref) is not defined")
        }
    }
}
