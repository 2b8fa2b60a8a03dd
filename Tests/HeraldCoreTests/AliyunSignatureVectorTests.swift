import Foundation
import HeraldCore
import HeraldPluginHost
import HeraldTestSupport
import Testing

/// The published Alibaba Cloud signature vectors (reference §1.6 vectors A and B for V2, §1.7
/// vector C for V3), computed by the plugins' own signing code through their
/// `explain-signature` admin action, which signs with the key given in its input.
@Suite("Alibaba Cloud SignatureVector tests")
struct AliyunSignatureVectorTests {
    func explain(_ input: String, plugin: String = "aliyun-sms") async throws -> JSONValue {
        let settings = plugin == "aliyun-sms"
            ? #"{access_key_id: "LTAI-own-key", access_key_secret: "own-secret", sign_name: "S", template_code: "SMS_1"}"#
            : #"{access_key_id: "LTAI-own-key", access_key_secret: "own-secret", called_show_number: "057100000000", start_code: "TTS_1", ack_code: "TTS_2", callback_token: "0123456789abcdef"}"#
        let config = try HeraldConfig.parse("""
        plugin_dirs: [\(try BuiltPlugins.directory())]
        integrations:
          - name: ali
            plugin: \(plugin)
            settings: \(settings)
        """, file: "/tmp/aliyun-vectors.yaml", environment: [:])
        let runtime = HeraldRuntime(config: config)
        defer { runtime.shutdown() }
        let integration = try #require(runtime.integrations["ali"], "\(runtime.problems)")
        let output = try await runtime.deliverer.runAction("explain-signature", input: input, on: integration).get()
        return try JSONValue.parse(output)
    }

    static let vectorA = #"""
    {"signature_version":"v2","method":"GET","access_key_secret":"testsecret","params":{
     "AccessKeyId":"testid","Action":"DescribeRegions","Format":"XML","SignatureMethod":"HMAC-SHA1",
     "SignatureNonce":"3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf","SignatureVersion":"1.0",
     "Timestamp":"2016-02-23T12:46:24Z","Version":"2014-05-26"}}
    """#

    @Test(arguments: ["aliyun-sms", "aliyun-voice"])
    func vectorAV2DescribeRegions(_ plugin: String) async throws {
        let out = try await explain(Self.vectorA, plugin: plugin)
        #expect(out["string_to_sign"]?.stringValue == "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26")
        #expect(out["signature"]?.stringValue == "OLeaidS1JvxuMvnyHOwuJ+uX5qY=")
    }

    static func vectorB(_ method: String) -> String {
        #"""
        {"signature_version":"v2","method":"\#(method)","access_key_secret":"testSecret","params":{
         "AccessKeyId":"testId","Action":"SendSms","Format":"XML","OutId":"123","PhoneNumbers":"15300000001",
         "RegionId":"cn-hangzhou","SignName":"阿里云短信测试专用","SignatureMethod":"HMAC-SHA1",
         "SignatureNonce":"45e25e9b-0a6f-4070-8c85-2956eda1b466","SignatureVersion":"1.0","TemplateCode":"SMS_71390007",
         "TemplateParam":"{\"customer\":\"test\"}","Timestamp":"2017-07-12T02:42:19Z","Version":"2017-05-25"}}
        """#
    }

    @Test func vectorBV2SendSmsGetAndPost() async throws {
        let get = try await explain(Self.vectorB("GET"))
        #expect(get["signature"]?.stringValue == "zJDF+Lrzhj/ThnlvIToysFRq6t4=")
        #expect(get["query"]?.stringValue?.hasSuffix("&Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D") == true)
        // UTF-8 sign name and JSON template parameters are percent-encoded byte by byte.
        #expect(get["string_to_sign"]?.stringValue?.contains("SignName%3D%25E9%2598%25BF") == true)
        #expect(get["string_to_sign"]?.stringValue?.contains("TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D") == true)
        // The method is part of the string to sign.
        let post = try await explain(Self.vectorB("POST"))
        #expect(post["signature"]?.stringValue == "Xvhv7fPXrPkLVSnlt0jIr08o8NQ=")
        #expect(post["string_to_sign"]?.stringValue?.hasPrefix("POST&%2F&") == true)
    }

    @Test(arguments: ["aliyun-sms", "aliyun-voice"])
    func vectorCV3RunInstances(_ plugin: String) async throws {
        let out = try await explain(#"""
        {"signature_version":"v3","method":"POST","host":"ecs.cn-shanghai.aliyuncs.com","action":"RunInstances",
         "version":"2014-05-26","date":"2023-10-26T10:22:32Z","nonce":"3156853299f313e23d1673dc12e1703d",
         "access_key_id":"YourAccessKeyId","access_key_secret":"YourAccessKeySecret",
         "params":{"RegionId":"cn-shanghai","ImageId":"win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"}}
        """#, plugin: plugin)
        #expect(out["hashed_canonical_request"]?.stringValue == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259")
        #expect(out["signature"]?.stringValue == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")
        #expect(out["authorization"]?.stringValue == "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")
        // The canonical request: sorted query, headers, the empty line before SignedHeaders.
        let canonical = try #require(out["canonical_request"]?.stringValue)
        #expect(canonical.hasPrefix("POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\nhost:ecs.cn-shanghai.aliyuncs.com\n"))
        #expect(canonical.contains("x-acs-version:2014-05-26\n\nhost;x-acs-action;"))
        #expect(canonical.hasSuffix("\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
    }

    @Test func theActionNeverSignsWithTheIntegrationsOwnKey() async throws {
        await #expect(throws: DeliveryOutcome.self) {
            _ = try await explain(#"{"signature_version":"v2","method":"GET","params":{"Action":"SendSms"}}"#)
        }
    }
}
