// Reads iCalendar files with ical.js (the parser inside Thunderbird) and prints what it understood as JSON.
// Usage: node parse_ics.mjs < file.ics     or     node parse_ics.mjs a.ics b.ics
// Output: a JSON array with one object per VCALENDAR: calendar properties, the TZIDs defined with their
// observances, and every VEVENT with start/end as UTC instants computed from the file's own VTIMEZONEs.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

function text(component, name) {
  const value = component.getFirstPropertyValue(name);
  return value === null || value === undefined ? null : String(value);
}

function address(property) {
  return {
    value: String(property.getFirstValue()),
    cn: property.getParameter("cn") ?? null,
    partstat: property.getParameter("partstat") ?? null,
  };
}

function instant(time) {
  if (!time) return null;
  return time.toJSDate().toISOString();
}

function zoneOf(time) {
  // "floating" here means ical.js found no definition for the TZID and guessed local time.
  if (!time || !time.zone) return null;
  return time.zone.tzid;
}

function readCalendar(vcalendar) {
  ICAL.TimezoneService.reset();
  const timezones = [];
  const observances = {};
  for (const vtimezone of vcalendar.getAllSubcomponents("vtimezone")) {
    const zone = new ICAL.Timezone(vtimezone);
    ICAL.TimezoneService.register(zone);
    timezones.push(zone.tzid);
    observances[zone.tzid] = vtimezone.getAllSubcomponents().map((observance) => ({
      kind: observance.name.toUpperCase(),
      rrule: observance.getFirstPropertyValue("rrule")?.toString() ?? null,
      rdates: observance.getAllProperties("rdate").length,
      from: observance.getFirstPropertyValue("tzoffsetfrom").toICALString(),
      to: observance.getFirstPropertyValue("tzoffsetto").toICALString(),
    }));
  }
  const method = text(vcalendar, "method");
  const refresh = vcalendar.getFirstProperty("refresh-interval");
  const events = vcalendar.getAllSubcomponents("vevent").map((vevent) => {
    const event = new ICAL.Event(vevent);
    const organizer = vevent.getFirstProperty("organizer");
    return {
      uid: event.uid,
      summary: event.summary ?? null,
      description: event.description ?? null,
      location: event.location ?? null,
      url: text(vevent, "url"),
      status: text(vevent, "status"),
      sequence: event.sequence,
      method,
      attendees: vevent.getAllProperties("attendee").map(address),
      organizer: organizer ? address(organizer) : null,
      dtstamp: instant(vevent.getFirstPropertyValue("dtstamp")),
      start: instant(event.startDate),
      end: instant(event.endDate),
      start_zone: zoneOf(event.startDate),
      end_zone: zoneOf(event.endDate),
      start_tzid: vevent.getFirstProperty("dtstart")?.getParameter("tzid") ?? null,
      end_tzid: vevent.getFirstProperty("dtend")?.getParameter("tzid") ?? null,
    };
  });
  return {
    method,
    name: text(vcalendar, "name"),
    x_wr_calname: text(vcalendar, "x-wr-calname"),
    refresh_interval: refresh ? String(refresh.getFirstValue()) : null,
    refresh_interval_type: refresh ? refresh.type : null,
    x_published_ttl: text(vcalendar, "x-published-ttl"),
    timezones,
    observances,
    events,
  };
}

function readSource(source) {
  const parsed = ICAL.parse(source);
  // ICAL.parse returns one jCal component, or a list when the text holds several.
  const list = Array.isArray(parsed[0]) ? parsed : [parsed];
  return list.map((jcal) => readCalendar(new ICAL.Component(jcal)));
}

const files = process.argv.slice(2);
const sources = files.length ? files.map((path) => readFileSync(path, "utf8")) : [readFileSync(0, "utf8")];
process.stdout.write(JSON.stringify(sources.flatMap(readSource), null, 1) + "\n");
