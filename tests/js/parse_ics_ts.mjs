// Reads iCalendar files with ts-ics (used by web calendar apps) and prints what it understood as JSON, in the
// shape parse_ics.mjs prints, so the Python tests compare the two readers field by field.
// Usage: node parse_ics_ts.mjs < file.ics     or     node parse_ics_ts.mjs a.ics b.ics
// ts-ics works out a zoned time from the file's VTIMEZONE when the TZID has one, and from the system's zone
// data otherwise; `zone_defined` says which, since only the first shows what the file says.
import { readFileSync } from "node:fs";
import { convertIcsCalendar } from "ts-ics";

function instant(value) {
  return value?.date ? value.date.toISOString() : null;
}

function address(value) {
  // ts-ics strips "mailto:" from addresses; it is put back so the readers print the same value.
  if (!value) return null;
  return { value: value.email ? `mailto:${value.email}` : null, cn: value.name ?? null, partstat: value.partstat ?? null };
}

function readCalendar(source) {
  const calendar = convertIcsCalendar(undefined, source);
  const defined = new Set((calendar.timezones ?? []).map((zone) => zone.id));
  const events = (calendar.events ?? []).map((event) => ({
    uid: event.uid,
    summary: event.summary ?? null,
    description: event.description ?? null,
    location: event.location ?? null,
    url: event.url ?? null,
    status: event.status ?? null,
    // ts-ics leaves out a SEQUENCE of 0 (it tests the number for truth), so a missing one reads as 0 here.
    sequence: event.sequence ?? 0,
    attendees: (event.attendees ?? []).map(address),
    organizer: address(event.organizer),
    start: instant(event.start),
    end: instant(event.end),
    start_tzid: event.start?.local?.timezone ?? null,
    end_tzid: event.end?.local?.timezone ?? null,
    start_zone: event.start?.local && defined.has(event.start.local.timezone) ? event.start.local.timezone : null,
    end_zone: event.end?.local && defined.has(event.end.local.timezone) ? event.end.local.timezone : null,
  }));
  return { method: calendar.method ?? null, name: calendar.name ?? null, timezones: [...defined], events };
}

const files = process.argv.slice(2);
const sources = files.length ? files.map((path) => readFileSync(path, "utf8")) : [readFileSync(0, "utf8")];
process.stdout.write(JSON.stringify(sources.map(readCalendar), null, 1) + "\n");
