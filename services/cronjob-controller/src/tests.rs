//! The act half in-process: the CronJob controller's writes against the runtime's recording
//! fake.
