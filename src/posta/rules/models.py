"""The rules app's tables; each part keeps its models in a module of its own and
this module imports them, which is how Django finds them in the app."""

from posta.rules.arrival_models import Arrival as Arrival
from posta.rules.autoreply_models import AutoReply as AutoReply
from posta.rules.autoreply_models import AutoReplySettings as AutoReplySettings
from posta.rules.autoreply_models import ServerPeriod as ServerPeriod
from posta.rules.filter_models import FilterRule as FilterRule
from posta.rules.filter_models import FilterServer as FilterServer
from posta.rules.pop3_models import Pop3Import as Pop3Import
from posta.rules.pop3_models import Pop3Source as Pop3Source
from posta.rules.scan_models import ScanJob as ScanJob
