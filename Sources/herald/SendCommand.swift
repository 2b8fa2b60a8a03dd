import ArgumentParser
import Foundation
import HeraldCore
import HeraldPluginHost

extension Herald {
    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send one message through an integration, the way incidents are sent.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "The integration's name in the config.") var integration: String
        @Option(help: "The message title.") var title: String
        @Option(help: "The message body.") var body: String = ""
        @Option(help: "critical, warning or info.") var severity: String = "info"
        @Option(help: "Destination within the integration (chat id, phone, email), if the plugin takes one.") var recipient: String = ""
        @Option(help: "A person to @mention, as 'name,email,phone' (repeatable); resolved through the mapping tables.") var mention: [String] = []

        static func member(_ text: String) -> Member {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            return Member(name: parts[0], email: parts.count > 1 ? parts[1] : "", phone: parts.count > 2 ? parts[2] : "")
        }

        func validate() throws {
            guard Severity(name: severity) != nil else { throw ValidationError("--severity must be critical, warning or info") }
            guard !title.isEmpty else { throw ValidationError("--title must not be empty") }
        }

        func run() async throws {
            let runtime = HeraldRuntime(config: try options.load())
            defer { runtime.shutdown() }
            guard let target = runtime.integrations[integration] else {
                runtime.problems.forEach { warn($0) }
                throw CLIError("integration '\(integration)' is not available (available: \(runtime.integrations.keys.sorted().joined(separator: ", ")))")
            }
            // Rendered as incidents are: the plugin's default template, escaped for its format.
            let id = UUID().uuidString.lowercased()
            let snapshot = IncidentSnapshot(id: "test-\(id.prefix(8))", title: title, description: body, severity: Severity(name: severity)!,
                                            event: .test, startedAt: Date())
            let composed: ComposedMessage
            do {
                composed = try target.compose(snapshot, mentioning: mention.map(Self.member), recipient: recipient, idempotencyKey: "cli-\(id)")
            } catch {
                throw CLIError("cannot render the message: \(error.message)")
            }
            composed.notes.forEach { warn($0) }
            let started = ContinuousClock.now
            let result = await runtime.deliverer.deliver(composed, through: target)
            let elapsed = started.duration(to: .now).components
            let ms = elapsed.seconds * 1000 + elapsed.attoseconds / 1_000_000_000_000_000
            switch result.outcome {
            case .delivered(let id):
                print("delivered through '\(integration)' in \(ms) ms\(id.map { " (provider id \($0))" } ?? "")")
            case .retry(let after, let reason):
                throw CLIError("not delivered, worth retrying\(after.map { " after \($0) ms" } ?? ""): \(reason)")
            case .failed(let reason):
                throw CLIError("not delivered: \(reason)")
            }
        }
    }

    struct Action: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a plugin's admin action on an integration (e.g. discover-chats).")
        @OptionGroup var options: ConfigOptions
        @Option(help: "The integration's name in the config.") var integration: String
        @Argument(help: "The action's name.") var name: String
        @Option(help: "Input JSON.") var input: String = "{}"

        func run() async throws {
            let runtime = HeraldRuntime(config: try options.load())
            defer { runtime.shutdown() }
            guard let target = runtime.integrations[integration] else {
                runtime.problems.forEach { warn($0) }
                throw CLIError("integration '\(integration)' is not available")
            }
            switch await runtime.deliverer.runAction(name, input: input, on: target) {
            case .success(let output): print(prettyJSON(output))
            case .failure(let outcome): throw CLIError("action '\(name)' failed: \(outcome)")
            }
        }
    }
}
