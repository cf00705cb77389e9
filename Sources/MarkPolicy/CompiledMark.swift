import MarkCore

/// A mark rule with its name sets built once.
final class CompiledMark: Sendable {
    let rule: MarkRule
    let allow: DomainSet
    let block: DomainSet
    let portal4: [IPAddress]
    let portal6: [IPAddress]

    init(_ rule: MarkRule) {
        self.rule = rule
        self.block = DomainSet(rule.block)
        if case .walledGarden(let w) = rule.action {
            allow = DomainSet(w.allow)
            portal4 = w.portal.filter { !$0.isIPv6 }
            portal6 = w.portal.filter(\.isIPv6)
        } else {
            allow = DomainSet(); portal4 = []; portal6 = []
        }
    }
}
