import TesseraCore
import TesseraTesting
import XCTest

/// Properties of `Scope.covers`, over scopes generated from a small universe so that a scope's
/// meaning — the set of concrete (base, parameter assignment) pairs it allows — can be enumerated.
final class ScopeCoversPropertyTests: XCTestCase {
    static let bases = ["crm:contacts.read", "crm:contacts.write"]
    static let names = ["ids", "fields", "region"]
    static let values = ["1", "2", "3"]

    func testCoversIsReflexive() throws {
        var rng = SeededGenerator(seed: 1)
        for _ in 0..<2000 {
            let scope = Self.randomScope(&rng)
            XCTAssertTrue(scope.covers(scope), "\(scope)")
        }
    }

    func testCoversIsTransitive() throws {
        var rng = SeededGenerator(seed: 2)
        var checked = 0
        for _ in 0..<15000 {
            let a = Self.randomScope(&rng), b = Self.randomScope(&rng), c = Self.randomScope(&rng)
            if a.covers(b) && b.covers(c) {
                checked += 1
                XCTAssertTrue(a.covers(c), "\(a) ⊒ \(b) ⊒ \(c)")
            }
        }
        XCTAssertGreaterThan(checked, 50, "the generator must produce enough chains to mean something")
    }

    /// Soundness: a held scope never covers a request that allows anything it does not.
    func testNeverCoversABroaderScope() throws {
        var rng = SeededGenerator(seed: 3)
        var covering = 0
        for _ in 0..<8000 {
            let held = Self.randomScope(&rng), asked = Self.randomScope(&rng)
            if held.covers(asked) {
                covering += 1
                XCTAssertTrue(Self.meaning(of: asked).isSubset(of: Self.meaning(of: held)), "\(held) covers broader \(asked)")
            }
        }
        XCTAssertGreaterThan(covering, 100)
    }

    /// Completeness: whenever the request's meaning is inside the held scope's, `covers` says so.
    func testCoversEveryNarrowerScope() throws {
        var rng = SeededGenerator(seed: 4)
        for _ in 0..<8000 {
            let held = Self.randomScope(&rng), asked = Self.randomScope(&rng)
            if Self.meaning(of: asked).isSubset(of: Self.meaning(of: held)) {
                XCTAssertTrue(held.covers(asked), "\(held) should cover \(asked)")
            }
        }
    }

    func testCanonicalTextParsesBackToTheSameScope() throws {
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<2000 {
            let scope = Self.randomScope(&rng)
            XCTAssertEqual(try Scope(parsing: scope.description), scope)
        }
    }

    static func randomScope(_ rng: inout SeededGenerator) -> Scope {
        var parameters: [String: Set<String>] = [:]
        for name in names where Bool.random(using: &rng) {
            var chosen = Set(values.filter { _ in Bool.random(using: &rng) })
            if chosen.isEmpty { chosen = [values.randomElement(using: &rng)!] }
            parameters[name] = chosen
        }
        return try! Scope(base: bases.randomElement(using: &rng)!, parameters: parameters)
    }

    /// Every concrete assignment of one value to each parameter name that the scope allows.
    /// The universe has one value no generated scope names, standing for the unbounded rest:
    /// `ids=1,2,3` does not allow every id.
    static func meaning(of scope: Scope) -> Set<String> {
        var result: Set<String> = []
        let universe = values + ["other"]
        for a in universe {
            for b in universe {
                for c in universe {
                    let assignment = ["ids": a, "fields": b, "region": c]
                    if scope.parameters.allSatisfy({ assignment[$0.key].map($0.value.contains) ?? false }) {
                        result.insert("\(scope.base)|\(a)|\(b)|\(c)")
                    }
                }
            }
        }
        return result
    }
}
