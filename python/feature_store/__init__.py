"""feature_store: the Python client of the feature_store PostgreSQL extension.

A Feast-like SDK over the extension's SQL functions::

    from feature_store import FeatureStore
    store = FeatureStore("host=/tmp dbname=app")
    training = store.get_historical_features(entity_df, ["driver_stats:conv_rate"])
    online = store.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1001}]).to_dict()

Declarations live in a YAML file applied with :meth:`FeatureStore.apply` or the CLI
(``python3 -m feature_store apply defs.yaml``). Nothing here touches the network at import.
"""

from .errors import FeatureStoreError, NotSupportedByServer
from .store import Entity, FeatureService, FeatureStore, FeatureView, OnlineResponse

__version__ = "0.3.0"
__all__ = ["FeatureStore", "FeatureStoreError", "NotSupportedByServer", "OnlineResponse",
           "Entity", "FeatureView", "FeatureService", "__version__"]
