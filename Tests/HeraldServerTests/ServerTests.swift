import HeraldServer
import Testing
