//! faultline-nemesis: the fault catalog, grudges, schedules, and the
//! node-side commands that make and heal each fault.
