"""How results.jsonl and summary.json here were written: by tfxattr at commit fb52ec8 (the store format before
part files and packed curves). ``PYTHONPATH=<checkout of fb52ec8> python make_fixture.py OUT``."""
import shutil
import sys

from tfxattr import evaluation as ev

out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
print(ev.evaluate("shapes:3", ["demo"], ["gradient", "ig+idgi:steps=4"],
                  ["insertion", "localization",
                   "sic_aic:thresholds=[0.1,0.3,0.6],min_pred_value=0.0,num_data_points=200",
                   "sic_aic_idgi:thresholds=[0.2,0.5,0.8],min_pred_value=0.0,bins=10"],
                  out, images_per_batch=2, progress=False, log=lambda m: None))
