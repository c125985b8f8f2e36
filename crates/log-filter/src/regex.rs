//! Regular expressions in filter patterns (`%…%`), limited to what AWS documents:
//!
//! - Characters: ASCII letters and digits, the symbols `:` `_` `#` `=` `@` `/` `;` `,` `-`, and
//!   the operators `^` `$` `?` `[` `]` `{` `}` `|` `\` `*` `+` `.`. Anything else (spaces,
//!   parentheses, `!`, multi-byte characters, …) is rejected with AWS' "Invalid character(s) in
//!   term"; write `\s`, or a hex escape such as `\x28` for `(`.
//! - `^` and `$` anchor at the start and the end of the value (`$` also before a final line
//!   break); `.` is any character but a line break; `?`, `*`, `+`, `{n}`, `{n,}`, `{n,m}` repeat
//!   the preceding atom (a trailing `?` making them lazy is accepted and changes nothing here);
//!   `[…]` and `[^…]` are character classes with ranges; `|` separates alternatives of the whole
//!   expression (there are no groups); `\d` `\D` `\w` `\W` `\s` `\S` are the usual classes,
//!   `\t` `\n` `\r` `\f` and `\xhh` are characters, and `\` before any other non-alphanumeric
//!   character makes it literal.
//! - The expression is searched for: it matches when it matches any part of the value.
//!
//! Not supported (rejected as syntax errors): possessive quantifiers, other escapes (`\b`, back
//! references, …) and nested classes. Matching simulates the automaton over all its states at
//! once, so its time is linear in the length of the value whatever the expression.

use crate::FilterError;

/// The largest repetition count, and the most automaton states an expression may expand to.
const MAX_REPEAT: u32 = 1000;
const MAX_STATES: usize = 4096;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Regex {
    /// The automaton: each alternative's states in a row, followed by its accepting state.
    states: Vec<State>,
    /// Index of each alternative's first state.
    starts: Vec<usize>,
    /// A run of literal characters every match contains, if the expression has one.
    required: Option<String>,
}

#[derive(Debug, Clone)]
enum State {
    /// Consume (or, for an anchor, check) one atom, then go on.
    Step {
        atom: Atom,
        rep: Rep,
    },
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rep {
    One,
    Optional,
    Star,
}

#[derive(Debug, Clone)]
enum Atom {
    Char(char),
    /// Any character except a line break.
    Any,
    Class(Class),
    Start,
    End,
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    items: Vec<ClassItem>,
}

#[derive(Debug, Clone)]
enum ClassItem {
    Range(char, char),
    Named(Named, bool),
}

#[derive(Debug, Clone, Copy)]
enum Named {
    Digit,
    Word,
    Space,
}

impl Named {
    fn contains(self, c: char) -> bool {
        match self {
            Named::Digit => c.is_ascii_digit(),
            Named::Word => c.is_ascii_alphanumeric() || c == '_',
            Named::Space => matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r'),
        }
    }
}

impl Class {
    fn contains(&self, c: char) -> bool {
        let hit = self.items.iter().any(|item| match *item {
            ClassItem::Range(lo, hi) => (lo..=hi).contains(&c),
            ClassItem::Named(n, negated) => n.contains(c) != negated,
        });
        hit != self.negated
    }
}

impl Atom {
    fn consumes(&self) -> bool {
        !matches!(self, Atom::Start | Atom::End)
    }

    fn accepts(&self, c: char) -> bool {
        match self {
            Atom::Char(x) => *x == c,
            Atom::Any => c != '\n' && c != '\r',
            Atom::Class(class) => class.contains(c),
            Atom::Start | Atom::End => false,
        }
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            ':' | '_'
                | '#'
                | '='
                | '@'
                | '/'
                | ';'
                | ','
                | '-'
                | '^'
                | '$'
                | '?'
                | '['
                | ']'
                | '{'
                | '}'
                | '|'
                | '\\'
                | '*'
                | '+'
                | '.'
        )
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    raw: &'a str,
}

impl Regex {
    /// Compiles `body` (the text between the `%`s); `raw` is the term as written, for messages.
    pub fn parse(body: &str, raw: &str) -> Result<Self, FilterError> {
        if !body.chars().all(is_allowed) {
            return Err(FilterError::InvalidCharacters(raw.to_owned()));
        }
        if body.is_empty() {
            return Err(FilterError::syntax("empty regular expression"));
        }
        let mut p = Parser {
            chars: body.chars().collect(),
            pos: 0,
            raw,
        };
        let mut branches: Vec<Vec<(Atom, u32, Option<u32>)>> = vec![Vec::new()];
        while let Some(c) = p.peek() {
            if c == '|' {
                p.pos += 1;
                branches.push(Vec::new());
                continue;
            }
            let atom = p.atom()?;
            let (min, max) = p.quantifier()?;
            if let Some(branch) = branches.last_mut() {
                branch.push((atom, min, max));
            }
        }
        let mut states = Vec::new();
        let mut starts = Vec::new();
        for branch in &branches {
            starts.push(states.len());
            for (atom, min, max) in branch {
                for _ in 0..*min {
                    states.push(State::Step {
                        atom: atom.clone(),
                        rep: Rep::One,
                    });
                }
                match max {
                    None => states.push(State::Step {
                        atom: atom.clone(),
                        rep: Rep::Star,
                    }),
                    Some(max) => {
                        for _ in *min..*max {
                            states.push(State::Step {
                                atom: atom.clone(),
                                rep: Rep::Optional,
                            });
                        }
                    }
                }
                if states.len() > MAX_STATES {
                    return Err(FilterError::syntax("regular expression too large"));
                }
            }
            states.push(State::Accept);
        }
        let required = if branches.len() == 1 {
            longest_literal_run(&states)
        } else {
            None
        };
        Ok(Regex {
            states,
            starts,
            required,
        })
    }

    /// A run of literal characters every match contains (for pre-filtering).
    pub fn required_literal(&self) -> Option<String> {
        self.required.clone()
    }

    /// Whether the expression matches any part of `text`.
    pub fn is_match(&self, text: &str) -> bool {
        if let Some(lit) = &self.required {
            if !text.contains(lit.as_str()) {
                return false;
            }
        }
        let chars: Vec<char> = text.chars().collect();
        let n = self.states.len();
        let mut cur = vec![false; n];
        let mut next = vec![false; n];
        let mut active: Vec<usize> = Vec::new();
        let mut next_active: Vec<usize> = Vec::new();
        let mut stack = Vec::new();
        for pos in 0..=chars.len() {
            for &s in &self.starts {
                self.close(s, pos, &chars, &mut cur, &mut active, &mut stack);
            }
            if active
                .iter()
                .any(|&s| matches!(self.states[s], State::Accept))
            {
                return true;
            }
            let Some(&c) = chars.get(pos) else { break };
            for &s in &active {
                if let State::Step { atom, rep } = &self.states[s] {
                    if atom.consumes() && atom.accepts(c) {
                        let to = if *rep == Rep::Star { s } else { s + 1 };
                        self.close(to, pos + 1, &chars, &mut next, &mut next_active, &mut stack);
                    }
                }
            }
            for &s in &active {
                cur[s] = false;
            }
            active.clear();
            std::mem::swap(&mut cur, &mut next);
            std::mem::swap(&mut active, &mut next_active);
        }
        false
    }

    /// Adds `s` and every state reachable from it without consuming input at `pos`.
    fn close(
        &self,
        s: usize,
        pos: usize,
        chars: &[char],
        set: &mut [bool],
        active: &mut Vec<usize>,
        stack: &mut Vec<usize>,
    ) {
        stack.push(s);
        while let Some(s) = stack.pop() {
            if set[s] {
                continue;
            }
            set[s] = true;
            active.push(s);
            let State::Step { atom, rep } = &self.states[s] else {
                continue;
            };
            let skip = *rep != Rep::One
                || match atom {
                    Atom::Start => pos == 0,
                    Atom::End => {
                        pos == chars.len()
                            || (chars[pos..] == ['\n'] || chars[pos..] == ['\r', '\n'])
                    }
                    _ => false,
                };
            if skip {
                stack.push(s + 1);
            }
        }
    }
}

fn longest_literal_run(states: &[State]) -> Option<String> {
    let mut best = String::new();
    let mut run = String::new();
    for s in states {
        match s {
            State::Step {
                atom: Atom::Char(c),
                rep: Rep::One,
            } => run.push(*c),
            _ => {
                if run.len() > best.len() {
                    best = std::mem::take(&mut run);
                }
                run.clear();
            }
        }
    }
    if run.len() > best.len() {
        best = run;
    }
    (!best.is_empty()).then_some(best)
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn err(&self, what: &str) -> FilterError {
        FilterError::syntax(format!("{what} in regular expression {}", self.raw))
    }

    fn atom(&mut self) -> Result<Atom, FilterError> {
        let c = self.bump().ok_or_else(|| self.err("missing atom"))?;
        Ok(match c {
            '^' => Atom::Start,
            '$' => Atom::End,
            '.' => Atom::Any,
            '[' => Atom::Class(self.class()?),
            '\\' => match self.escape()? {
                Escaped::Char(c) => Atom::Char(c),
                Escaped::Named(n, negated) => Atom::Class(Class {
                    negated: false,
                    items: vec![ClassItem::Named(n, negated)],
                }),
            },
            '?' | '*' | '+' => return Err(self.err(&format!("dangling '{c}'"))),
            '{' => return Err(self.err("dangling '{'")),
            ']' => return Err(self.err("unmatched ']'")),
            c => Atom::Char(c),
        })
    }

    /// After `\`.
    fn escape(&mut self) -> Result<Escaped, FilterError> {
        let c = self.bump().ok_or_else(|| self.err("trailing '\\'"))?;
        Ok(match c {
            'd' => Escaped::Named(Named::Digit, false),
            'D' => Escaped::Named(Named::Digit, true),
            'w' => Escaped::Named(Named::Word, false),
            'W' => Escaped::Named(Named::Word, true),
            's' => Escaped::Named(Named::Space, false),
            'S' => Escaped::Named(Named::Space, true),
            't' => Escaped::Char('\t'),
            'n' => Escaped::Char('\n'),
            'r' => Escaped::Char('\r'),
            'f' => Escaped::Char('\x0C'),
            'x' => {
                let hex: String = (0..2).filter_map(|_| self.bump()).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .ok_or_else(|| self.err("bad \\x escape"))?;
                Escaped::Char(char::from_u32(code).ok_or_else(|| self.err("bad \\x escape"))?)
            }
            c if c.is_ascii_alphanumeric() => {
                return Err(self.err(&format!("unsupported escape '\\{c}'")))
            }
            c => Escaped::Char(c),
        })
    }

    /// After `[`.
    fn class(&mut self) -> Result<Class, FilterError> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut items = Vec::new();
        loop {
            let c = self.bump().ok_or_else(|| self.err("unterminated '['"))?;
            let lo = match c {
                ']' if !items.is_empty() => break,
                ']' => return Err(self.err("empty class")),
                '[' => return Err(self.err("nested class")),
                '\\' => match self.escape()? {
                    Escaped::Char(c) => c,
                    Escaped::Named(n, neg) => {
                        items.push(ClassItem::Named(n, neg));
                        continue;
                    }
                },
                c => c,
            };
            // A range, unless the '-' is the class' last character.
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&c| c != ']') {
                self.pos += 1;
                let hi = match self.bump() {
                    Some('\\') => match self.escape()? {
                        Escaped::Char(c) => c,
                        Escaped::Named(..) => return Err(self.err("bad range")),
                    },
                    Some('[') => return Err(self.err("nested class")),
                    Some(c) => c,
                    None => return Err(self.err("unterminated '['")),
                };
                if hi < lo {
                    return Err(self.err("bad range"));
                }
                items.push(ClassItem::Range(lo, hi));
            } else {
                items.push(ClassItem::Range(lo, lo));
            }
        }
        Ok(Class { negated, items })
    }

    /// An optional quantifier after an atom: `(min, max)`, `max` `None` for unbounded.
    fn quantifier(&mut self) -> Result<(u32, Option<u32>), FilterError> {
        let q = match self.peek() {
            Some('?') => (0, Some(1)),
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('{') => {
                self.pos += 1;
                let min = self.number()?.ok_or_else(|| self.err("bad '{'"))?;
                let max = match self.bump() {
                    Some('}') => Some(min),
                    Some(',') => {
                        let max = self.number()?;
                        if self.bump() != Some('}') {
                            return Err(self.err("bad '{'"));
                        }
                        max
                    }
                    _ => return Err(self.err("bad '{'")),
                };
                if max.is_some_and(|m| m < min) {
                    return Err(self.err("bad repetition range"));
                }
                // Step back one so the common bump below consumes the closing '}'.
                self.pos -= 1;
                (min, max)
            }
            _ => return Ok((1, Some(1))),
        };
        self.pos += 1;
        match self.peek() {
            // Lazy: the same set of matches.
            Some('?') => self.pos += 1,
            Some('+') => return Err(self.err("possessive quantifiers are not supported")),
            _ => {}
        }
        if matches!(self.peek(), Some('?' | '*' | '+' | '{')) {
            return Err(self.err("dangling quantifier"));
        }
        Ok(q)
    }

    fn number(&mut self) -> Result<Option<u32>, FilterError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            return Ok(None);
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        match s.parse::<u32>() {
            Ok(n) if n <= MAX_REPEAT => Ok(Some(n)),
            _ => Err(self.err("repetition count too large")),
        }
    }
}

enum Escaped {
    Char(char),
    Named(Named, bool),
}

#[cfg(test)]
mod tests;
