import Foundation
import Platform
import XCTest

final class RegistryConfigTests: XCTestCase {
    let file = "registry/hello/ol.yaml"

    func parseError(_ yaml: String) -> String {
        do {
            let config = try LambdaConfig.parse(yaml: yaml, file: file)
            XCTFail("accepted: \(config)")
            return ""
        } catch {
            return error.description
        }
    }

    func testFullExample() throws {
        let yaml = """
            triggers:
              http:
                - method: get
                - method: POST
              cron:
                - schedule: "*/5 * * * *"
              kafka:
                - topics: [t]
            environment:
              GREETING: hello
              PORT: 8080
            limits:
              memory_mb: 64
              timeout_s: 2.5
              procs: 8
              cpu_percent: 50
            reuse-sandbox: false
            installs: [numpy]
            """
        let config = try LambdaConfig.parse(yaml: yaml, file: file)
        XCTAssertEqual(config.httpMethods, ["GET", "POST"])
        XCTAssertEqual(config.environment, ["GREETING": "hello", "PORT": "8080"])
        XCTAssertEqual(config.limits, LimitsOverride(memoryMB: 64, timeoutSeconds: 2.5, procs: 8, cpuPercent: 50))
        XCTAssertFalse(config.reuseSandbox)
        XCTAssertTrue(config.allows(method: "get"))
        XCTAssertFalse(config.allows(method: "DELETE"))
    }

    func testDefaults() throws {
        for yaml in ["", "# only a comment\n", "~", "triggers:\n", "triggers:\n  http: []\n", "environment:\nlimits:\n"] {
            let config = try LambdaConfig.parse(yaml: yaml, file: file)
            XCTAssertEqual(config, .default, yaml)
            XCTAssertNil(config.httpMethods)
            XCTAssertTrue(config.allows(method: "PATCH"))
            XCTAssertTrue(config.reuseSandbox)
        }
    }

    func testEachFieldAlone() throws {
        XCTAssertEqual(try LambdaConfig.parse(yaml: "triggers:\n  http:\n    - method: PUT\n", file: file).httpMethods, ["PUT"])
        XCTAssertEqual(try LambdaConfig.parse(yaml: "environment: {A: '1', B_2: x y}", file: file).environment, ["A": "1", "B_2": "x y"])
        XCTAssertEqual(try LambdaConfig.parse(yaml: "limits: {memory_mb: 32}", file: file).limits, LimitsOverride(memoryMB: 32))
        XCTAssertEqual(try LambdaConfig.parse(yaml: "limits: {timeout_s: 1}", file: file).limits, LimitsOverride(timeoutSeconds: 1))
        XCTAssertEqual(try LambdaConfig.parse(yaml: "reuse-sandbox: true", file: file).reuseSandbox, true)
        XCTAssertEqual(try LambdaConfig.parse(yaml: "reuse-sandbox: false", file: file).reuseSandbox, false)
    }

    func testErrorsNameFileLineAndField() {
        XCTAssertEqual(parseError("triggers:\n  http: []\nlimits:\n  memory_mb: lots\n"),
                       "registry/hello/ol.yaml:4: limits.memory_mb: expected a whole number")
        XCTAssertEqual(parseError("limits:\n  procs: 1.5\n"), "registry/hello/ol.yaml:2: limits.procs: expected a whole number")
        XCTAssertEqual(parseError("limits:\n  timeout_s: soon\n"), "registry/hello/ol.yaml:2: limits.timeout_s: expected a number")
        XCTAssertEqual(parseError("limits:\n  memory_mb: 4\n"), "registry/hello/ol.yaml:2: limits.memory_mb: must be >= 8, got 4")
        XCTAssertEqual(parseError("\nlimits:\n  disk_mb: 4\n"),
                       "registry/hello/ol.yaml:3: limits.disk_mb: unknown limit (known: memory_mb, timeout_s, procs, cpu_percent)")
        XCTAssertEqual(parseError("limits: 5\n"),
                       "registry/hello/ol.yaml:1: limits: expected a mapping with memory_mb, timeout_s, procs, cpu_percent")
        XCTAssertEqual(parseError("reuse-sandbox: maybe\n"), "registry/hello/ol.yaml:1: reuse-sandbox: expected true or false")
        XCTAssertEqual(parseError("a: 1\nmemory: 5\n"),
                       "registry/hello/ol.yaml:1: a: unknown key (known: triggers, environment, limits, reuse-sandbox)")
        XCTAssertEqual(parseError("triggers:\n  http:\n    - method: 5\n"),
                       "registry/hello/ol.yaml:3: triggers.http[0].method: expected an HTTP method name such as GET or POST")
        XCTAssertEqual(parseError("triggers:\n  http:\n    - verb: GET\n"),
                       "registry/hello/ol.yaml:3: triggers.http[0].verb: unknown key (known: method)")
        XCTAssertEqual(parseError("triggers:\n  http: POST\n"),
                       "registry/hello/ol.yaml:2: triggers.http: expected a list of {method: NAME}")
        XCTAssertEqual(parseError("triggers:\n  sqs: []\n"),
                       "registry/hello/ol.yaml:2: triggers.sqs: unknown trigger (known: http, cron, kafka)")
        XCTAssertEqual(parseError("environment:\n  A: [1, 2]\n"), "registry/hello/ol.yaml:2: environment.A: expected a string")
        XCTAssertEqual(parseError("environment:\n  A:\n"), "registry/hello/ol.yaml:2: environment.A: expected a string")
        XCTAssertTrue(parseError("environment:\n  1BAD: x\n").hasPrefix("registry/hello/ol.yaml:2: environment: \"1BAD\" is not a valid variable name"))
        XCTAssertEqual(parseError("environment: [a]\n"),
                       "registry/hello/ol.yaml:1: environment: expected a mapping of variable names to strings")
        XCTAssertTrue(parseError("- just\n- a list\n").hasPrefix("registry/hello/ol.yaml:1: expected a mapping"))
        let syntax = parseError("triggers:\n  http: [\n")
        XCTAssertTrue(syntax.hasPrefix("registry/hello/ol.yaml:"), syntax)
        XCTAssertTrue(syntax.contains("not valid YAML"), syntax)
    }

    func testJSONShape() throws {
        let config = try LambdaConfig.parse(yaml: "triggers: {http: [{method: POST}]}\nenvironment: {A: b}\nlimits: {memory_mb: 64}\n", file: file)
        let json = config.json()
        XCTAssertEqual(((json["triggers"] as? [String: Any])?["http"] as? [[String: String]]), [["method": "POST"]])
        XCTAssertEqual(json["environment"] as? [String: String], ["A": "b"])
        XCTAssertEqual(json["limits"] as? [String: Int], ["memory_mb": 64])
        XCTAssertEqual(json["reuse-sandbox"] as? Bool, true)
        let defaults = LambdaConfig.default.json()
        XCTAssertNil((defaults["triggers"] as? [String: Any])?["http"])
        XCTAssertEqual(String(decoding: LambdaConfig.default.jsonData(), as: UTF8.self),
                       #"{"environment":{},"limits":{},"reuse-sandbox":true,"triggers":{}}"#)
    }
}
