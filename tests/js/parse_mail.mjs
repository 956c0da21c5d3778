// Reads raw email messages with mailparser (simpleParser, as Node mail clients do) and prints the headers a
// recipient sees as JSON: the decoded Subject and every address of From, To and Reply-To.
// Usage: node parse_mail.mjs a.eml b.eml ...     or     node parse_mail.mjs < message.eml
// Output: a JSON array, one object per message, in the order given:
//   {"subject": "...", "from": [{"name": "...", "address": "..."}], "to": [...], "reply_to": [...]}
import { readFileSync } from "node:fs";
import { simpleParser } from "mailparser";

function addresses(header) {
  if (!header) return [];
  const groups = Array.isArray(header) ? header : [header];
  return groups.flatMap((group) => group.value).map((entry) => ({
    name: entry.name ?? "",
    address: entry.address ?? "",
  }));
}

async function read(source) {
  const parsed = await simpleParser(source, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  return {
    subject: parsed.subject ?? null,
    from: addresses(parsed.from),
    to: addresses(parsed.to),
    reply_to: addresses(parsed.replyTo),
  };
}

const files = process.argv.slice(2);
const sources = files.length ? files.map((path) => readFileSync(path)) : [readFileSync(0)];
const results = [];
for (const source of sources) {
  results.push(await read(source));
}
process.stdout.write(JSON.stringify(results) + "\n");
