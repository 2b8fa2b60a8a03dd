import Foundation
import HeraldPluginHost
import Testing

/// The published and derived signature vectors from the provider reference (§9), computed with
/// the host's crypto services exactly as the plugins call them.
@Suite("Provider signature vectors")
struct SignatureVectorTests {
    func b64(_ bytes: [UInt8]) -> String { String(decoding: HostCrypto.base64Encode(bytes), as: UTF8.self) }
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func feishuCustomBotSign() {
        // V4 (third-party test) and V5: key = "timestamp\nsecret", message empty.
        #expect(b64(HostCrypto.hmacSHA256(key: bytes("1756800000\norbit-test-secret"), message: [])) == "sN+9ZKa5w6BQmKyxCaxNA1DWEgtEnZaOcfEOCqZ26fg=")
        #expect(b64(HostCrypto.hmacSHA256(key: bytes("1599360473\ndemo-secret"), message: [])) == "3/MaVZ8JLIy4TUG+7KSFJqvUkTKd+HWY8g+56DZWq8s=")
        // The classic mistake (key and message swapped) gives the other published value.
        #expect(b64(HostCrypto.hmacSHA256(key: bytes("demo-secret"), message: bytes("1599360473\ndemo-secret"))) == "+y4hoW+2wrJQJ+Ccwm+K1OKBY3kTQ7fsX6PjcCKo06U=")
    }

    @Test func dingtalkRobotSign() {
        // V8: key = secret, message = "timestamp\nsecret"; then percent-encoded for the query.
        let sign = b64(HostCrypto.hmacSHA256(key: bytes("SECdemo-secret"), message: bytes("1700000000000\nSECdemo-secret")))
        #expect(sign == "hMcp9tIC+t4YETtvFK+lpdjLr1E/ovXPdM+YDW8K4XM=")
        #expect(String(decoding: HostCrypto.percentEncode(bytes(sign)), as: UTF8.self) == "hMcp9tIC%2Bt4YETtvFK%2BlpdjLr1E%2FovXPdM%2BYDW8K4XM%3D")
    }

    @Test func standardWebhooksSignature() throws {
        // V10, the spec's own vector: key = base64-decoded secret without "whsec_".
        let key = try #require(HostCrypto.base64Decode(bytes("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")))
        let content = #"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}"#
        #expect("v1," + b64(HostCrypto.hmacSHA256(key: key, message: bytes(content))) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func slackRequestSignature() {
        // V1 (official): "v0=" + hex(HMAC-SHA256(secret, "v0:ts:body")), for the app callbacks to come.
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        let mac = HostCrypto.hmacSHA256(key: bytes("8f742231b10e8888abcd99yyyzzz85a5"), message: bytes("v0:1531420618:" + body))
        #expect("v0=" + mac.map { String(format: "%02x", $0) }.joined() == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")
    }
}
