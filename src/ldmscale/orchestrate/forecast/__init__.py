"""What a sweep will cost before it is submitted: `ldmscale forecast`.

For a sweep's plan and a machine profile, the time, accelerator-hours and cost of every job
(`estimate.forecast`), from the U-Net FLOPs of `ldmscale.models.cost` and the profile's
throughput and fixed costs (`profile`), by one rule per job kind (`rules.RULES`). A finished
study's own times (`measured`) check a forecast (`compare`); short timed runs fit a measured
profile (`fit`, run by `make bench-profile`); `remaining` gives `ldmscale status` the time a
running study still needs.
"""
